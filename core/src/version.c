/* core/src/version.c: the linked library's version. */
#include "gyre/version.h"

const char *gy_version(void) { return GY_VERSION_STRING; }

unsigned gy_version_hex(void) { return GY_VERSION_HEX; }
