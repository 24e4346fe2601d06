/* core/src/bytes.c: immutable byte strings with the payload in the arena. */
#include <string.h>

#include "gyre/bytes.h"
#include "heap.h"

struct gy_bytes {
    gy_object ob;
    size_t len;
    char *data; /* len + 1 bytes of raw arena memory; immutable once built */
};

/* A leaf type still releases its payload when freed. */
static void bytes_clear(gy_object *self) {
    gy_bytes *b = (gy_bytes *)self;
    gy__mem_free(&b->ob, b->data, b->len + 1);
    b->data = NULL;
    b->len = 0;
}

gy_type gy_bytes_type = {
    .name = "bytes",
    .size = sizeof(gy_bytes),
    .clear = bytes_clear,
    .flags = GY_TYPE_LEAF,
};

int gy__bytes_new_at(gy_bytes **out, const void *data, size_t len, const char *file, int line) {
    if (data == NULL && len > 0) {
        return GY_EINVAL;
    }
    gy_bytes *b;
    int rc = gy__new_at(&gy_bytes_type, &b, file, line);
    if (rc != GY_OK) {
        return rc;
    }
    b->data = gy__mem_alloc(&b->ob, len + 1);
    if (b->data == NULL) {
        gy_decref(b);
        return GY_ENOMEM;
    }
    if (len > 0) {
        memcpy(b->data, data, len);
    }
    b->data[len] = '\0';
    b->len = len;
    *out = b;
    return GY_OK;
}

const char *gy_bytes_data(const gy_bytes *b) { return b->data ? b->data : ""; }

size_t gy_bytes_len(const gy_bytes *b) { return b->len; }
