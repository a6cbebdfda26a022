/*
 * The open62541 peer's address space (namespace 1, string NodeIds, under Objects; see README.md)
 * and what it does for subscription tests: counters that change on a timer, an AnalogItem, events
 * on a timer, and a count of the monitored-item calls it was sent.
 */
#ifndef PEER62541_ADDRESS_SPACE_H
#define PEER62541_ADDRESS_SPACE_H

#include <open62541/server.h>

typedef struct address_space_options {
    unsigned events_every_ms;  /* 0: no events */
    bool advertise_limit;      /* OperationLimits/MaxMonitoredItemsPerCall reads advertised_limit */
    unsigned advertised_limit; /* instead of the limit the server enforces */
} address_space_options;

/* Adds the nodes and starts the timers. */
UA_StatusCode peer_build_address_space(UA_Server *server, const address_space_options *o);

/* For config->serviceNotificationCallback: counts Create/Modify/SetMonitoringMode/
 * DeleteMonitoredItems requests as they begin, those refused included. */
void peer_count_service(UA_Server *server, UA_ApplicationNotificationType type,
                        const UA_KeyValueMap payload);

#endif
