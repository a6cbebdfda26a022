/* uarc: OPC UA Reverse Connect on the client side. The one header applications include. */
#ifndef UARC_UARC_H
#define UARC_UARC_H

#include "uarc/common.h"

#endif
