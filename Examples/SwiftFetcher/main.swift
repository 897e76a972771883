// A command-line app that answers background fetches, in Swift.
//
//   swift run bgfetch-example                      # registers "refresh" and waits
//   bgfetchctl trigger bgfetch-example refresh     # in another terminal: fetch now
//
// Without a Flatpak id, an app-….scope unit or a bus name, the service knows a
// program by its executable's name: here "bgfetch-example". `--app-id ID` owns
// that bus name instead and answers fetches delivered the desktop way too
// (ActivateAction, when a DBusActivatable desktop entry lets the bus start it).
// `--once` exits after the first answered fetch (the tests use both).
import BackgroundFetch

let arguments = CommandLine.arguments
let appID = arguments.firstIndex(of: "--app-id").map { arguments[$0 + 1] }
// Defined for the whole process before connecting: a fetch may arrive as soon as the name is ours.
BackgroundFetchClient.defineTask("refresh") { context in
    print("fetch \(context.requestID) of \(context.taskName), \(context.timeRemaining) left")
    try await Task.sleep(for: .milliseconds(100))  // refresh the app's data here; cancelled at the deadline
    return .newData
}
let fetch = try await BackgroundFetchClient(appID: appID, answerDesktopActivation: appID != nil)  // the session bus
let answered = fetch.completedFetches()
let options = BackgroundFetchOptions(minimumInterval: .seconds(15 * 60), stopOnTerminate: false)
try await fetch.registerTask("refresh", options: options)
print("registered 'refresh'; waiting for fetches")
for await done in answered {
    print("answered fetch \(done.requestID) of \(done.taskName) with \(done.result)")
    if arguments.contains("--once") { break }
}
