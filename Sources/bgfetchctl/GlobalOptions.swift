/// The bus options and `--json` may come before the subcommand or after it,
/// as with `systemctl` and `busctl`: those given before it are moved after
/// it, where the subcommand parses them.
enum GlobalOptions {
    static let flags: Set<String> = ["--user", "--system", "--json"]
    static let options: Set<String> = ["--address"]

    static func hoisted(_ arguments: [String], subcommands: Set<String>) -> [String] {
        guard let index = arguments.firstIndex(where: subcommands.contains) else { return arguments }
        var moved: [String] = []
        var before: [String] = []
        var position = 0
        while position < index {
            let argument = arguments[position]
            if flags.contains(argument) || options.contains(where: { argument.hasPrefix($0 + "=") }) {
                moved.append(argument)
            } else if options.contains(argument), position + 1 < index {
                moved += [argument, arguments[position + 1]]
                position += 1
            } else {
                before.append(argument)
            }
            position += 1
        }
        return before + [arguments[index]] + moved + arguments[(index + 1)...]
    }
}
