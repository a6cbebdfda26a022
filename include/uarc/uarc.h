/* uarc: OPC UA Reverse Connect on the client side. The one header applications include. */
#ifndef UARC_UARC_H
#define UARC_UARC_H

#include "uarc/common.h"
#include "uarc/types.h"
#include "uarc/budget.h"
#include "uarc/nodeids.h"
#include "uarc/attributes.h"
#include "uarc/endpoint_url.h"
#include "uarc/rhe.h"
#include "uarc/allowlist.h"
#include "uarc/listener.h"
#include "uarc/client.h"
#include "uarc/subscription.h"
#include "uarc/reverse.h"

#endif
