/*
 * The hub's insides, shared by its files: hub.c (servers, routing, the process step),
 * hub_discovery.c (learning a server's certificate), hub_events.c (the epoll set and the timer
 * heap that let a wake-up touch only the servers with events or due deadlines).
 */
#ifndef UARC_REVERSE_HUB_INTERNAL_H
#define UARC_REVERSE_HUB_INTERNAL_H

#include "uarc/reverse.h"
#include "reverse/hub_timers.h"

/* The most uarc_client_gather_ms() says (larger answers count as this). */
#define HUB_AUTO_GATHER_MAX_MS 50

enum hub_watch_kind { HUB_WATCH_LISTENER, HUB_WATCH_CLIENT, HUB_WATCH_PROBE, HUB_WATCH_SPARE };

/* A descriptor in the hub's epoll set; the epoll data points at it. */
typedef struct hub_watch {
    uint8_t kind; /* hub_watch_kind */
    int fd;       /* registered, -1 when none */
    uint32_t events;
    struct hub_server *server; /* NULL for the listener */
} hub_watch;

typedef struct hub_server {
    uarc__heap_node timer; /* the server's next deadline in the hub's heap */
    char *server_uri;
    struct hub_server *hash_next; /* the hub's table by ServerUri; the graveyard once released */
    size_t index;                 /* in hub->servers */
    uarc_client *client;
    uarc_reverse_hub *hub;
    bool was_active;      /* a session was active at least once */
    bool active;          /* the session is active now */
    bool became_active;   /* noted during processing, reported afterwards */
    bool became_inactive; /* likewise */
    bool reopened;        /* a socket ended: its descriptor number may come back for another */
    bool handshaking;     /* counted in hub->handshakes */
    int gather;           /* its client's uarc_client_gather_ms() as counted by the hub; -1 not */
    size_t touched_at;    /* index in hub->touched, UARC__HEAP_ABSENT when not there */
    uarc_status end_status;
    uarc_reverse_connection spare; /* a newer socket from this server, kept while in session */
    int64_t spare_deadline;        /* when a spare still unused is dropped */
    hub_watch watches[3];          /* client, probe, spare */
    uarc__backoff backoff;
    /* Discovery of the server's certificate; probe is NULL when it is known or not needed. */
    uarc_client *probe;
    uarc_MessageSecurityMode mode;   /* of the endpoint to look for */
    bool probe_ended;                /* noted during processing, acted on afterwards */
    bool probe_answered;             /* the outcome is known: found or probe_status */
    uarc_status probe_status;        /* why discovery failed */
    uarc_EndpointDescription *found; /* the endpoint whose certificate fits */
    char *probe_detail; /* "<step>: <StatusName>: <reason>" of a failure, owned; NULL: none */
    /* with `found`: everything GetEndpoints said, for the server's client */
    uarc_GetEndpointsResponse *offered;
} hub_server;

/* A socket dropped without becoming its server's connection, reported after the round. */
typedef struct hub_certificate hub_certificate;

typedef struct drop_report {
    char *server_uri;
    char peer[UARC_PEER_SIZE];
    uarc_status status;
    char reason[160];
} drop_report;

struct uarc_reverse_hub {
    uarc_reverse_hub_config opt;
    hub_server **servers;
    size_t count, capacity;
    hub_server **buckets; /* by ServerUri */
    size_t bucket_count;
    drop_report *drops;
    size_t drop_count, drop_capacity;
    uarc_memory_budget *own_budget; /* made when the base configuration names none */
    /* With generate_certificate: the certificate every client of the hub presents, one per key
     * type (hub_certificate.c), made at the first secured server that needs it rather than by
     * each client (an RSA key takes a while to make, and it would be made inside the loop that
     * serves everybody). */
    hub_certificate *certificates;
    size_t certificate_count;
    /* Work proportional to what happened: one epoll set, one heap of deadlines, and the list
     * of servers touched in this round (events, due deadlines, wake callbacks). */
    int epfd;
    hub_watch listener_watch;
    hub_watch **by_fd; /* who registered each descriptor number */
    size_t by_fd_capacity;
    uarc__heap timers;
    hub_server **touched;
    size_t touched_count, touched_capacity;
    int processing;        /* depth of uarc_reverse_hub_process() calls */
    hub_server *graveyard; /* released during a round, freed after it */
    size_t handshakes;     /* servers whose client or probe is connecting */
    size_t clients_run;    /* clients run in the last process call (tests) */
    /* gathering: when the last wait that ended with events did (-1: none, or it took a full
     * batch), and how a pause is taken (a sleep; tests put their own) */
    int64_t woke_at;
    bool (*nap)(void *context, int ms);
    void *nap_context;
    int last_wait; /* the timeout of the last epoll_wait (tests) */
    /* the last round that touched a server still connecting (-1: none): no gathering pause
     * for the window after it */
    int64_t handshake_moved_at;
    /* automatic gathering: servers in session by what their client tolerates (0 ms..max) */
    size_t gather_counts[HUB_AUTO_GATHER_MAX_MS + 1];
};

/* hub_certificate.c: gives a client configured with generate_certificate (secured, no
 * certificate of its own, the hub's application URI) the hub's certificate of the key type its
 * policy needs, made at first use. */
uarc_status uarc__hub_share_certificate(uarc_reverse_hub *hub, uarc_client_config *cfg);
void uarc__hub_certificates_clear(uarc_reverse_hub *hub);

/* hub_discovery.c */
uarc_client *uarc__hub_new_probe(hub_server *s, const uarc_client_config *cfg);
void uarc__hub_start_discovery(hub_server *s, uarc_reverse_connection *c);
bool uarc__hub_finish_discovery(uarc_reverse_hub *hub, hub_server *s);
void uarc__hub_free_discovery(hub_server *s);

/* hub.c: reports a failed connect or discovery (through the backoff); true when it called. */
bool uarc__hub_report_failed(uarc_reverse_hub *hub, hub_server *s, uarc_status status,
                             const char *detail);

/* hub_events.c */
bool uarc__hub_events_init(uarc_reverse_hub *hub);
void uarc__hub_events_clear(uarc_reverse_hub *hub);
/* Puts the server in this round's list (once); false when out of memory. */
void uarc__hub_touch(uarc_reverse_hub *hub, hub_server *s);
/* Re-reads the server's descriptors and deadline into the epoll set and the heap. */
void uarc__hub_sync(uarc_reverse_hub *hub, hub_server *s, int64_t now);
/* Takes the server out of the epoll set, the heap and the touched list. */
void uarc__hub_forget(uarc_reverse_hub *hub, hub_server *s);
void uarc__hub_sync_listener(uarc_reverse_hub *hub);
/* The wake callback of every client of the hub. */
void uarc__hub_on_wake(void *user_data, uarc_client *client);

/* Clients run by the last uarc_reverse_hub_process() call (tests prove it is what happened,
 * not what exists). */
size_t uarc__reverse_hub_clients_run(const uarc_reverse_hub *hub);
/* hub_gather.c: gather_ms capped, no window or hold yet, pauses taken by sleeping. */
void uarc__hub_gather_init(uarc_reverse_hub *hub);
/* Counts what the server's client tolerates now (automatic gathering; from uarc__hub_sync). */
void uarc__hub_gather_note(uarc_reverse_hub *hub, hub_server *s);
/* The server no longer counts (from uarc__hub_forget). */
void uarc__hub_gather_forget(uarc_reverse_hub *hub, hub_server *s);
/* The pause of a wait the hub does itself (uarc_reverse_hub_gather_ms()), within the wait the
 * caller allows and the hub's own deadlines (both already in `wait`); what is left of `wait`
 * goes to epoll_wait. False when a signal cut the pause short: then nothing more is waited for. */
bool uarc__hub_gather(uarc_reverse_hub *hub, int *wait);
/* Replaces how the hub pauses when gathering (tests: a pause that does something meanwhile, and
 * returns false to play a signal). */
void uarc__reverse_hub_set_nap(uarc_reverse_hub *hub, bool (*nap)(void *context, int ms),
                               void *context);
/* The timeout the last uarc_reverse_hub_process() gave epoll_wait, after any pause (tests). */
int uarc__reverse_hub_last_wait(const uarc_reverse_hub *hub);

#endif
