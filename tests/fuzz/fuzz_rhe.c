/*
 * libFuzzer target for the RHE parser and the checks that follow it. Besides "no crash", it
 * checks the parser's promises: a complete frame is never refused when cut short (only "need
 * more"), views stay inside the input, and what decodes re-encodes to a frame that decodes equal.
 */
#include <stdlib.h>
#include <string.h>

#include "uarc/allowlist.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

static int views_equal(uarc_view a, uarc_view b)
{
    return a.length == b.length && (a.length == 0 || memcmp(a.data, b.data, a.length) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uarc_allowlist *allowlist;
    if (!allowlist) {
        allowlist = uarc_allowlist_new();
        uarc_allowlist_add(allowlist, "urn:a", NULL);
        uarc_allowlist_add(allowlist, "urn:b", "opc.tcp://b:4840");
    }
    uarc_rhe hello;
    uarc_rhe_error error;
    size_t needed = 0;
    uarc_rhe_result r = uarc_rhe_parse(data, size, 0, &hello, &needed, &error);
    if (r == UARC_RHE_NEED_MORE) {
        require(needed > size && needed <= UARC_RHE_MAX_MESSAGE_SIZE);
        return 0;
    }
    if (r == UARC_RHE_INVALID) {
        require(error.status != UARC_Good && strlen(error.detail) < sizeof error.detail);
        return 0;
    }
    require(r == UARC_RHE_COMPLETE);
    require(hello.message_size >= UARC_RHE_MIN_MESSAGE_SIZE && hello.message_size <= size);
    const uarc_view views[2] = {hello.server_uri, hello.endpoint_url};
    for (int i = 0; i < 2; i++) {
        uarc_view v = views[i];
        require(v.length <= UARC_RHE_MAX_STRING_LENGTH);
        if (v.length) {
            require(v.data >= data && v.data + v.length <= data + hello.message_size);
            require(memchr(v.data, 0, v.length) == NULL);
        }
    }
    for (size_t cut = 0; cut < hello.message_size; cut++)
        require(uarc_rhe_parse(data, cut, 0, NULL, NULL, NULL) == UARC_RHE_NEED_MORE);

    uint8_t again[UARC_RHE_MAX_MESSAGE_SIZE];
    size_t written = 0;
    require(uarc_rhe_encode(hello.server_uri, hello.endpoint_url, again, sizeof again, &written) ==
            UARC_Good);
    uarc_rhe second;
    require(uarc_rhe_parse(again, written, 0, &second, NULL, NULL) == UARC_RHE_COMPLETE);
    require(views_equal(second.server_uri, hello.server_uri));
    require(views_equal(second.endpoint_url, hello.endpoint_url));

    char reason[256];
    uarc_status s = uarc_allowlist_check(allowlist, &hello, reason, sizeof reason);
    require(s == UARC_Good || s == UARC_BadTcpEndpointUrlInvalid);
    require(strlen(reason) < sizeof reason || s == UARC_Good);
    return 0;
}
