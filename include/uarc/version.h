/* The one place the version lives; CMake reads it from here. */
#ifndef UARC_VERSION_H
#define UARC_VERSION_H

#define UARC_VERSION_MAJOR 0
#define UARC_VERSION_MINOR 1
#define UARC_VERSION_PATCH 0
#define UARC_VERSION       "0.1.0"

#endif
