/* The EndpointUrl rules a peer's opc.tcp URL must pass (uarc/endpoint_url.h). No I/O. */
#include <string.h>
#include <strings.h>

#include "uarc/endpoint_url.h"
#include "core/log.h"

UARC_API uarc_status uarc_endpoint_url_check(uarc_view url, char *reason, size_t reason_size)
{
    static const char scheme[] = "opc.tcp://";
    const size_t scheme_len = sizeof scheme - 1;
    char shown[128];
    if (url.length == 0) {
        uarc__set_detail(reason, reason_size, "EndpointUrl is empty");
        return UARC_BadTcpEndpointUrlInvalid;
    }
    uarc_escape_bytes(shown, sizeof shown, url.data, url.length);
    for (size_t i = 0; i < url.length; i++) {
        if (url.data[i] <= 0x20 || url.data[i] == 0x7f) {
            uarc__set_detail(reason, reason_size,
                             "EndpointUrl \"%s\" holds a space or control byte", shown);
            return UARC_BadTcpEndpointUrlInvalid;
        }
    }
    if (url.length < scheme_len || strncasecmp((const char *)url.data, scheme, scheme_len) != 0) {
        uarc__set_detail(reason, reason_size, "EndpointUrl \"%s\" does not use the opc.tcp scheme",
                         shown);
        return UARC_BadTcpEndpointUrlInvalid;
    }
    const uint8_t *p = url.data + scheme_len, *end = url.data + url.length;
    const uint8_t *host = p;
    if (p < end && *p == '[') {
        const uint8_t *close = memchr(p, ']', (size_t)(end - p));
        if (!close || close == p + 1) {
            uarc__set_detail(reason, reason_size, "EndpointUrl \"%s\" has a malformed IPv6 host",
                             shown);
            return UARC_BadTcpEndpointUrlInvalid;
        }
        p = close + 1;
    } else {
        while (p < end && *p != ':' && *p != '/')
            p++;
    }
    if (p == host) {
        uarc__set_detail(reason, reason_size, "EndpointUrl \"%s\" names no host", shown);
        return UARC_BadTcpEndpointUrlInvalid;
    }
    if (p < end && *p == ':') {
        p++;
        unsigned long port = 0;
        const uint8_t *digits = p;
        while (p < end && *p >= '0' && *p <= '9' && p - digits < 6)
            port = port * 10 + (unsigned long)(*p++ - '0');
        if (p == digits || port == 0 || port > 65535 || (p < end && *p != '/')) {
            uarc__set_detail(reason, reason_size, "EndpointUrl \"%s\" has an invalid port", shown);
            return UARC_BadTcpEndpointUrlInvalid;
        }
    }
    if (p < end && *p != '/') {
        uarc__set_detail(reason, reason_size, "EndpointUrl \"%s\" has an invalid host", shown);
        return UARC_BadTcpEndpointUrlInvalid;
    }
    return UARC_Good;
}
