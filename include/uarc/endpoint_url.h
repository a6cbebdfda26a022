/* The rules an opc.tcp EndpointUrl must pass, shared by the listener and the client. */
#ifndef UARC_ENDPOINT_URL_H
#define UARC_ENDPOINT_URL_H

#include "uarc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Checks that an EndpointUrl is usable: non-empty, scheme "opc.tcp" (compared case-insensitively),
 * a non-empty host (a name, an IPv4 address or a bracketed IPv6 address), an optional port of
 * 1–65535 and an optional path starting with '/'; no spaces or control bytes.
 * Returns Good or BadTcpEndpointUrlInvalid with the reason in `reason` (if not NULL).
 */
UARC_API uarc_status uarc_endpoint_url_check(uarc_view url, char *reason, size_t reason_size);

#ifdef __cplusplus
}
#endif

#endif
