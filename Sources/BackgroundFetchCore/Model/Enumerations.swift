// The status, result and state enumerations are the wire contract's.
@_exported import BackgroundFetchContract
