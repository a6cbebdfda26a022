/*
 * Server certificate validation (Part 4 §6.1.3) over OpenSSL's X509_STORE: the chain built from
 * a trust list, an issuers list and the issuers the server sent, signatures, trust, validity
 * period, revocation (when CRLs are present), signature algorithm, key type (RSA of the RSA
 * policies' sizes, or EC), key usage; and the host name check against the certificate's
 * subjectAltName. Internal.
 */
#ifndef UARC_CHANNEL_CERT_TRUST_H
#define UARC_CHANNEL_CERT_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "uarc/types.h"

/* A certificate field holds at most this many certificates (the server's and its issuers) and
 * this many bytes. */
#define UARC__CERT_CHAIN_MAX       8u
#define UARC__CERT_CHAIN_MAX_BYTES 65536u

/*
 * Validates the certificate at the start of `der`. `der` may hold the certificate followed by
 * issuers of it (a chain, Part 6 §6.2.6); they help build the chain but are not trusted, and only
 * the first certificate is the server's. More than UARC__CERT_CHAIN_MAX certificates, more than
 * UARC__CERT_CHAIN_MAX_BYTES, or bytes after a certificate that are not one: BadCertificateInvalid.
 *
 * trust_list_dir: a folder whose regular files (and those of its "certs" and "crl" subfolders, the
 * usual OPC UA PKI layout) are trusted certificates (CA or self-signed application certificates)
 * and CRLs, PEM or DER; other files are ignored. issuer_list (NULL: none): a file or folder of the
 * same kind whose CA certificates and CRLs may complete a chain but trust nothing by themselves.
 * The chain must lead from the certificate to a self-signed one through the trust list, the
 * issuers list and the certificates sent (else BadCertificateChainIncomplete), and the certificate
 * or one of the chain's issuers must be in the trust list (else BadCertificateUntrusted). When any
 * CRL is present, every certificate of the chain must be covered by its issuer's CRL (self-signed
 * ones excepted). NULL trust list: the certificate itself is the only trusted one (pinned), so
 * only the checks below the trust decision apply; issuer_list is then ignored.
 *
 * at: the time to check validity periods against, seconds since the epoch; 0: now.
 *
 * Returns Good or the OPC UA verdict: BadCertificateInvalid, BadCertificateUntrusted,
 * BadCertificateChainIncomplete, BadCertificate(Issuer)TimeInvalid, BadCertificate(Issuer)Revoked,
 * BadCertificate(Issuer)RevocationUnknown, BadCertificate(Issuer)UseNotAllowed,
 * BadCertificatePolicyCheckFailed, BadConfigurationError (a list folder unreadable),
 * BadOutOfMemory. `detail` (NUL-terminated, may be truncated) then names the certificate's subject
 * and the reason.
 */
uarc_status uarc__cert_validate(const uint8_t *der, size_t length, const char *trust_list_dir,
                                const char *issuer_list, int64_t at, char *detail,
                                size_t detail_size);

/*
 * Checks `host` (a host name, or an IPv4 or IPv6 address without brackets, as in an EndpointUrl)
 * against the DNS and IP subjectAltNames of the first certificate of `der`. Returns Good,
 * BadCertificateHostNameInvalid (the detail names the host and the certificate's names) or
 * BadCertificateInvalid.
 */
uarc_status uarc__cert_check_host(const uint8_t *der, size_t length, const char *host, char *detail,
                                  size_t detail_size);

#endif
