/*
 * A memory budget shared by many clients: one ceiling on the bytes their connections hold for
 * what servers send, so that many hostile or broken servers together cannot make the process
 * hold more than the operator allows.
 *
 * What it counts, per connection: the receive buffer, the chunks of responses being joined (up to
 * MaxMessageSize), and the decoded response while its callback runs. The receive buffer holds a
 * chunk cut across two reads of the socket, up to our ReceiveBufferSize; one over 16 KiB is given
 * back once that chunk is handled, unless the bytes are the application's (byte mode: all are
 * copied, and the buffer is kept) or the read ended inside the next chunk. A chunk whole in one
 * read is handled in the read buffer itself, on the stack, and costs nothing. Each is charged
 * before it is allocated and released when it is freed. A connection whose receive buffer would
 * go over the budget ends with BadTcpNotEnoughResources; a response that would go over fails with
 * BadResponseTooLarge (the connection goes on). Responses being joined may fill at most three
 * quarters of the budget, so that while hostile servers stream endless responses the last
 * quarter still serves everyone's receive buffers and small answers.
 *
 * Give one budget to many clients through uarc_client_config.memory_budget; a hub with none in its
 * base configuration makes one of UARC_MEMORY_BUDGET_DEFAULT for all its clients.
 *
 * Threads: charging and releasing are atomic, so one budget may be shared by clients (or hubs) on
 * several threads. It must outlive every client that uses it.
 */
#ifndef UARC_BUDGET_H
#define UARC_BUDGET_H

#include "uarc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 GiB: 10,000 sessions each holding a full 64 KiB receive buffer (625 MiB) and still 399 MiB
 * for responses being joined and decoded. */
#define UARC_MEMORY_BUDGET_DEFAULT ((size_t)1024 * 1024 * 1024)

typedef struct uarc_memory_budget uarc_memory_budget;

/* Creates a budget of `limit` bytes (0: UARC_MEMORY_BUDGET_DEFAULT). NULL when out of memory. */
UARC_API uarc_memory_budget *uarc_memory_budget_new(size_t limit);

/* Frees it. Every client using it must be deleted first. NULL is ignored. */
UARC_API void uarc_memory_budget_delete(uarc_memory_budget *budget);

/* The ceiling, and the bytes charged now. */
UARC_API size_t uarc_memory_budget_limit(const uarc_memory_budget *budget);
UARC_API size_t uarc_memory_budget_used(const uarc_memory_budget *budget);

/* The most bytes ever charged at once: what the budget actually had to hold. */
UARC_API size_t uarc_memory_budget_peak(const uarc_memory_budget *budget);

#ifdef __cplusplus
}
#endif

#endif
