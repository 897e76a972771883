// A command-line app that answers background fetches, in Swift.
//
//   swift run bgfetch-example                      # registers "refresh" and waits
//   bgfetchctl trigger bgfetch-example refresh     # in another terminal: fetch now
//
// Without a Flatpak id, an app-….scope unit or a bus name, the service knows a
// program by its executable's name: here "bgfetch-example". `--once` exits after
// the first answered fetch (the tests use it).
import BackgroundFetch

let fetch = try await BackgroundFetchClient()  // the session bus; BackgroundFetchClient(bus: .system) for the system one
fetch.defineTask("refresh") { context in
    print("fetch \(context.requestID) of \(context.taskName), \(context.timeRemaining) left")
    try await Task.sleep(for: .milliseconds(100))  // refresh the app's data here; cancelled at the deadline
    return .newData
}
let answered = fetch.completedFetches()
try await fetch.registerTask("refresh", options: BackgroundFetchOptions(minimumInterval: .seconds(15 * 60)))
print("registered 'refresh'; waiting for fetches")
for await done in answered {
    print("answered fetch \(done.requestID) of \(done.taskName) with \(done.result)")
    if CommandLine.arguments.contains("--once") { break }
}
