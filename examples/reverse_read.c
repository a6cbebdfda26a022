/*
 * Wait for one OPC UA server to dial in (Reverse Connect), open a session over its socket,
 * and read the server's current time.
 *
 *   example_reverse_read PORT SERVER_URI
 *
 * Point a server's reverse-connect setting at opc.tcp://<this host>:PORT.
 */
#include <stdio.h>
#include <stdlib.h>

#include <uarc/uarc.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT SERVER_URI\n", argv[0]);
        return 2;
    }
    uarc_allowlist *allow = uarc_allowlist_new();
    uarc_allowlist_add(allow, argv[2], NULL);

    uarc_listener_config options = {.port = (uint16_t)atoi(argv[1]), .allowlist = allow};
    uarc_listener *listener = uarc_listener_new(&options);
    uarc_client *client = uarc_client_new(NULL); /* defaults: SecurityPolicy None, anonymous */
    int rc = 1;
    if (uarc_listener_listen(listener) != UARC_Good) {
        fprintf(stderr, "listen: %s\n", uarc_listener_error(listener));
        goto done;
    }

    /* Blocks until that server dials in; other servers are served (and queued) meanwhile. */
    uarc_reverse_connection connection;
    uarc_reverse_connection_init(&connection);
    if (uarc_listener_accept_from(listener, argv[2], NULL, 60000, &connection) != UARC_Good) {
        fprintf(stderr, "accept: %s\n", uarc_listener_error(listener));
        goto done;
    }
    printf("%s dialed in from %s, endpoint %s\n", connection.server_uri, connection.peer,
           connection.endpoint_url);

    /* HEL, OPN, CreateSession, ActivateSession over the inbound socket. */
    uarc_status status = uarc_reverse_connect(client, &connection);
    uarc_reverse_connection_clear(&connection);
    if (status != UARC_Good) {
        fprintf(stderr, "connect: %s\n", uarc_client_error(client));
        goto done;
    }

    uarc_nodeid current_time = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_CurrentTime);
    uarc_data_value value;
    status = uarc_client_read_attribute(client, &current_time, UARC_ATTRIBUTEID_Value, &value);
    if (status == UARC_Good && value.value.type == UARC_T(DateTime)) {
        char text[UARC_DATETIME_TEXT_SIZE];
        uarc_datetime_print(*(uarc_datetime *)value.value.data, text);
        printf("server time: %s\n", text);
        rc = 0;
    } else {
        fprintf(stderr, "read: %s\n", uarc_client_error(client));
    }
    uarc_clear(&value, UARC_T(DataValue));
    uarc_client_disconnect(client);
done:
    uarc_client_delete(client);
    uarc_listener_delete(listener);
    uarc_allowlist_delete(allow);
    return rc;
}
