import DBus

extension DBusError {
    /// The bus (not the service) answered: the service was not there or went away.
    var isFromBus: Bool {
        [Name.noReply, Name.serviceUnknown, Name.nameHasNoOwner, Name.disconnected].contains(name)
    }

    /// The call never reached a service: nothing can have changed.
    var neverDelivered: Bool { name == Name.serviceUnknown || name == Name.nameHasNoOwner }
}
