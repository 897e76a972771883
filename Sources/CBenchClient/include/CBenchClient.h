#ifndef CBENCHCLIENT_H
#define CBENCHCLIENT_H

/*
 * The bench's call client: plain libdbus on a private connection of its own,
 * so that the call figures measure bgfetchd and the bus, not a client.
 * Every function runs on the calling thread and blocks; on failure it returns
 * -1 (or NULL) and writes a message into `error` (`error_size` bytes).
 */

#include <stddef.h>
#include <stdint.h>

typedef struct bench_client bench_client;

/* Which call to make. */
typedef enum {
    /* GetStatus on the service's app interface. */
    BENCH_CALL_GET_STATUS = 0,
    /* org.freedesktop.DBus.Peer.Ping to the same name and path: the floor. */
    BENCH_CALL_PING = 1,
} bench_call;

/* Connects to the bus at `address` and says Hello. Calls go to
   `destination` at `path`; GetStatus is on `app_interface`. */
bench_client *bench_client_open(const char *address, const char *destination, const char *path,
                                const char *app_interface, char *error, size_t error_size);

void bench_client_close(bench_client *client);

/* One blocking GetStatus; its uint32 answer goes to `status`. */
int bench_client_get_status(bench_client *client, uint32_t *status, char *error, size_t error_size);

/* `warmup` unrecorded GetStatus/Ping pairs, then `count` of each, one at a
   time, interleaved: GetStatus first on even iterations, Ping first on odd
   ones. Each round trip's nanoseconds go to `get_status_ns[i]` and
   `ping_ns[i]`, which hold `count` values. */
int bench_client_round_trips(bench_client *client, int warmup, int count, uint64_t *get_status_ns,
                             uint64_t *ping_ns, char *error, size_t error_size);

/* `total` calls, `in_flight` at a time: each reply that comes in lets the
   next call out. `seconds`: from the first call out to the last reply in;
   `cpu_seconds`: this thread's CPU time (user and system) over the same span. */
int bench_client_throughput(bench_client *client, bench_call call, int total, int in_flight, double *seconds,
                            double *cpu_seconds, char *error, size_t error_size);

#endif
