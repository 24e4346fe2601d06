/* gyre/gyre.h: the umbrella header of Gyre's core library. */
#ifndef GYRE_GYRE_H
#define GYRE_GYRE_H

#include "gyre/common.h"
#include "gyre/error.h"
#include "gyre/failpoint.h"
#include "gyre/log.h"
#include "gyre/version.h"

#endif /* GYRE_GYRE_H */
