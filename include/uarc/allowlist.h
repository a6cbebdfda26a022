/*
 * Which servers may reverse-connect: an allowlist of ServerUris, each optionally pinned to the
 * EndpointUrl it must announce, and the EndpointUrl rules every RHE must pass.
 *
 * Matching is byte for byte and case-sensitive, never as C strings. An empty allowlist rejects
 * every server (fail-secure). An allowlist is not thread-safe; it may be read by several listeners
 * of one thread.
 */
#ifndef UARC_ALLOWLIST_H
#define UARC_ALLOWLIST_H

#include "uarc/endpoint_url.h"
#include "uarc/rhe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uarc_allowlist uarc_allowlist;

/* Creates an empty allowlist; NULL when out of memory. */
UARC_API uarc_allowlist *uarc_allowlist_new(void);

/* Frees the allowlist. NULL is ignored. */
UARC_API void uarc_allowlist_delete(uarc_allowlist *allowlist);

/*
 * Allows `server_uri`. With `endpoint_url` not NULL the server is allowed only when it announces
 * exactly that EndpointUrl; adding the same ServerUri several times allows each pinned URL (an
 * entry without a pin allows any URL). Both strings are copied.
 * Returns Good; BadInvalidArgument for an empty string, one of 4096 bytes or more, or an
 * EndpointUrl that is not a valid opc.tcp URL; BadOutOfMemory.
 */
UARC_API uarc_status uarc_allowlist_add(uarc_allowlist *allowlist, const char *server_uri,
                                        const char *endpoint_url);

/*
 * Adds the entries of a text file: one ServerUri per line, optionally followed by whitespace and
 * the EndpointUrl to pin. Blank lines and lines starting with '#' are skipped; surrounding
 * whitespace is trimmed. On failure, `detail` (if not NULL) names the file, line and problem;
 * entries read before the bad line stay added.
 * Returns Good, BadNotFound (cannot open), BadInvalidArgument (bad line) or BadOutOfMemory.
 */
UARC_API uarc_status uarc_allowlist_load_file(uarc_allowlist *allowlist, const char *path,
                                              char *detail, size_t detail_size);

/* Number of entries. */
UARC_API size_t uarc_allowlist_count(const uarc_allowlist *allowlist);

/*
 * Checks an RHE: first its EndpointUrl (uarc_endpoint_url_check), then its ServerUri against the
 * entries. Returns Good when allowed, else BadTcpEndpointUrlInvalid with the reason written to
 * `reason` (if not NULL).
 */
UARC_API uarc_status uarc_allowlist_check(const uarc_allowlist *allowlist, const uarc_rhe *hello,
                                          char *reason, size_t reason_size);

#ifdef __cplusplus
}
#endif

#endif
