/*
 * The bench's call client (see include/CBenchClient.h). It does per call what
 * any libdbus client must and nothing more, so the bench's call figures are
 * bounded by bgfetchd and the bus rather than by the client.
 */
#include "CBenchClient.h"

#include <dbus/dbus.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a round trip may take, and how long a pipelined run may go
   without any reply, before the call counts as failed. */
#define ROUND_TRIP_TIMEOUT_MS 10000
#define THROUGHPUT_STALL_NS 30000000000ull

struct bench_client {
    DBusConnection *connection;
    char *destination;
    char *path;
    char *app_interface;
};

static uint64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *error, size_t error_size, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    if (error_size > 0) vsnprintf(error, error_size, format, arguments);
    va_end(arguments);
    return -1;
}

/* Copies a libdbus error into `error` and frees it. */
static int fail_dbus(char *error, size_t error_size, const char *what, DBusError *dbus_error) {
    fail(error, error_size, "%s: %s: %s", what, dbus_error->name ? dbus_error->name : "?",
         dbus_error->message ? dbus_error->message : "");
    dbus_error_free(dbus_error);
    return -1;
}

bench_client *bench_client_open(const char *address, const char *destination, const char *path,
                                const char *app_interface, char *error, size_t error_size) {
    DBusError dbus_error;
    dbus_error_init(&dbus_error);
    /* Private: the bench's own connection, never shared with other code. */
    DBusConnection *connection = dbus_connection_open_private(address, &dbus_error);
    if (!connection) {
        fail_dbus(error, error_size, "cannot connect", &dbus_error);
        return NULL;
    }
    dbus_connection_set_exit_on_disconnect(connection, FALSE);
    if (!dbus_bus_register(connection, &dbus_error)) {
        fail_dbus(error, error_size, "Hello failed", &dbus_error);
        dbus_connection_close(connection);
        dbus_connection_unref(connection);
        return NULL;
    }
    bench_client *client = calloc(1, sizeof *client);
    if (client) {
        client->connection = connection;
        client->destination = strdup(destination);
        client->path = strdup(path);
        client->app_interface = strdup(app_interface);
    }
    if (!client || !client->destination || !client->path || !client->app_interface) {
        fail(error, error_size, "out of memory");
        if (!client) {
            dbus_connection_close(connection);
            dbus_connection_unref(connection);
        }
        bench_client_close(client);
        return NULL;
    }
    return client;
}

void bench_client_close(bench_client *client) {
    if (!client) return;
    dbus_connection_close(client->connection);
    dbus_connection_unref(client->connection);
    free(client->destination);
    free(client->path);
    free(client->app_interface);
    free(client);
}

static DBusMessage *new_call(const bench_client *client, bench_call call) {
    if (call == BENCH_CALL_PING)
        return dbus_message_new_method_call(client->destination, client->path, DBUS_INTERFACE_PEER, "Ping");
    return dbus_message_new_method_call(client->destination, client->path, client->app_interface, "GetStatus");
}

/* Sends `message` (and releases it), waits for the reply, returns it. */
static DBusMessage *call_blocking(bench_client *client, DBusMessage *message, char *error, size_t error_size) {
    DBusError dbus_error;
    dbus_error_init(&dbus_error);
    DBusMessage *reply =
        dbus_connection_send_with_reply_and_block(client->connection, message, ROUND_TRIP_TIMEOUT_MS, &dbus_error);
    dbus_message_unref(message);
    if (!reply) fail_dbus(error, error_size, "call failed", &dbus_error);
    return reply;
}

int bench_client_get_status(bench_client *client, uint32_t *status, char *error, size_t error_size) {
    DBusMessage *message = new_call(client, BENCH_CALL_GET_STATUS);
    if (!message) return fail(error, error_size, "out of memory");
    DBusMessage *reply = call_blocking(client, message, error, error_size);
    if (!reply) return -1;
    DBusError dbus_error;
    dbus_error_init(&dbus_error);
    dbus_uint32_t value = 0;
    dbus_bool_t ok = dbus_message_get_args(reply, &dbus_error, DBUS_TYPE_UINT32, &value, DBUS_TYPE_INVALID);
    dbus_message_unref(reply);
    if (!ok) return fail_dbus(error, error_size, "GetStatus answered no uint32", &dbus_error);
    *status = value;
    return 0;
}

int bench_client_round_trips(bench_client *client, int warmup, int count, uint64_t *get_status_ns,
                             uint64_t *ping_ns, char *error, size_t error_size) {
    for (int index = -warmup; index < count; index++) {
        /* Alternate which goes first, so that drift hits both alike. */
        int status_first = (index & 1) == 0;
        for (int turn = 0; turn < 2; turn++) {
            bench_call call = (turn == 0) == status_first ? BENCH_CALL_GET_STATUS : BENCH_CALL_PING;
            /* The message is made before the clock starts, as any client would have it ready. */
            DBusMessage *message = new_call(client, call);
            if (!message) return fail(error, error_size, "out of memory");
            uint64_t start = clock_ns(CLOCK_MONOTONIC);
            DBusMessage *reply = call_blocking(client, message, error, error_size);
            uint64_t elapsed = clock_ns(CLOCK_MONOTONIC) - start;
            if (!reply) return -1;
            dbus_message_unref(reply);
            if (index >= 0) (call == BENCH_CALL_GET_STATUS ? get_status_ns : ping_ns)[index] = elapsed;
        }
    }
    return 0;
}

int bench_client_throughput(bench_client *client, bench_call call, int total, int in_flight, double *seconds,
                            double *cpu_seconds, char *error, size_t error_size) {
    DBusConnection *connection = client->connection;
    /* Only this loop sends on the connection, so libdbus numbers the calls
       first_serial, first_serial + 1, ...: a reply is ours when its reply
       serial falls in that range. Anything else (NameAcquired) is dropped. */
    dbus_uint32_t first_serial = 0;
    int issued = 0, answered = 0, failed = 0;
    uint64_t cpu_start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t start = clock_ns(CLOCK_MONOTONIC), last_reply = start;
    while (answered < issued || (!failed && issued < total)) {
        /* Top up to `in_flight` outstanding; after a failure, only drain. */
        while (!failed && issued < total && issued - answered < in_flight) {
            DBusMessage *message = new_call(client, call);
            dbus_uint32_t serial = 0;
            if (!message || !dbus_connection_send(connection, message, &serial)) {
                if (message) dbus_message_unref(message);
                fail(error, error_size, "out of memory");
                failed = 1;
                break;
            }
            dbus_message_unref(message);
            if (issued == 0) first_serial = serial;
            issued++;
        }
        if (answered == issued) break;
        /* Take every message libdbus has already read; when there is none,
           wait for the socket (read, or write what is still queued). */
        DBusMessage *message = dbus_connection_pop_message(connection);
        if (!message) {
            if (!dbus_connection_read_write(connection, 1000)) {
                fail(error, error_size, "disconnected with %d calls unanswered", issued - answered);
                failed = 1;
                break;
            }
            if (clock_ns(CLOCK_MONOTONIC) - last_reply > THROUGHPUT_STALL_NS) {
                fail(error, error_size, "no reply for 30 s with %d calls unanswered", issued - answered);
                failed = 1;
                break;
            }
            continue;
        }
        int type = dbus_message_get_type(message);
        if ((type == DBUS_MESSAGE_TYPE_METHOD_RETURN || type == DBUS_MESSAGE_TYPE_ERROR) &&
            dbus_message_get_reply_serial(message) - first_serial < (dbus_uint32_t)issued) {
            answered++;
            last_reply = clock_ns(CLOCK_MONOTONIC);
            if (type == DBUS_MESSAGE_TYPE_ERROR && !failed) {
                DBusError dbus_error;
                dbus_error_init(&dbus_error);
                dbus_set_error_from_message(&dbus_error, message);
                fail_dbus(error, error_size, "call failed", &dbus_error);
                failed = 1;
            }
        }
        dbus_message_unref(message);
    }
    *seconds = (double)(clock_ns(CLOCK_MONOTONIC) - start) / 1e9;
    *cpu_seconds = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu_start) / 1e9;
    return failed ? -1 : 0;
}
