/* A program outside the uarc tree: it includes the umbrella header and calls into the library. */
#include <stdio.h>
#include <string.h>

#include <uarc/uarc.h>

int main(void)
{
    const char *name = uarc_status_name(UARC_BadTimeout);
    if (strcmp(name, "BadTimeout") != 0) {
        fprintf(stderr, "uarc_status_name gave %s\n", name);
        return 1;
    }
    uarc_client *client = uarc_client_new(NULL);
    if (!client) {
        fprintf(stderr, "uarc_client_new failed\n");
        return 1;
    }
    uarc_client_delete(client);
    printf("uarc %s: %s; a client created and deleted\n", UARC_VERSION, name);
    return 0;
}
