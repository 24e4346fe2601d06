/* gyre/gyre.h: the umbrella header of Gyre's core library. */
#ifndef GYRE_GYRE_H
#define GYRE_GYRE_H

#include "gyre/bytes.h"
#include "gyre/common.h"
#include "gyre/dict.h"
#include "gyre/error.h"
#include "gyre/failpoint.h"
#include "gyre/introspect.h"
#include "gyre/list.h"
#include "gyre/log.h"
#include "gyre/object.h"
#include "gyre/runtime.h"
#include "gyre/trace.h"
#include "gyre/version.h"
#include "gyre/weakref.h"

#endif /* GYRE_GYRE_H */
