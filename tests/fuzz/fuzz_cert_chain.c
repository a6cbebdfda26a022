/*
 * libFuzzer target for what a server's certificate field may hold: its certificate followed by
 * issuers of it (Part 6 §6.2.6), split and checked by uarc__cert_validate (pinned: the first
 * certificate trusts itself, the rest only completes chains), and the host name check. Besides
 * "no crash, no leak": a verdict is Good or a certificate status with a detail, the same input
 * gives the same verdict twice, and more than the chain limits is never Good.
 */
#include <stdlib.h>
#include <string.h>

#include "channel/cert_trust.h"
#include "uarc/status_codes.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char detail[600], again[600];
    uarc_status s = uarc__cert_validate(data, size, NULL, NULL, 0, detail, sizeof detail);
    require(memchr(detail, '\0', sizeof detail) != NULL);
    if (s != UARC_Good)
        require(detail[0] != '\0' || s == UARC_BadOutOfMemory);
    if (size > UARC__CERT_CHAIN_MAX_BYTES)
        require(s == UARC_BadCertificateInvalid);
    require(uarc__cert_validate(data, size, NULL, NULL, 0, again, sizeof again) == s);
    static const char *const hosts[] = {"localhost", "127.0.0.1", "::1", "a.plant.example"};
    s = uarc__cert_check_host(data, size, hosts[size % 4], detail, sizeof detail);
    require(s == UARC_Good || s == UARC_BadCertificateHostNameInvalid ||
            s == UARC_BadCertificateInvalid);
    return 0;
}
