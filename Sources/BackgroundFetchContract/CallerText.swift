/// How a string a caller sent appears in an error message or a log line: it
/// never carries raw input. Control characters are escaped (`\n`, `\x1b`,
/// …), then the text is cut to at most ``limit`` bytes of UTF-8, with a mark
/// that says it was cut, so an error message stays under 400 bytes and a log
/// line cannot be forged.
public enum CallerText {
    public static let limit = 256

    public static func shown(_ text: String, limit: Int = limit) -> String {
        var escaped = ""
        var bytes = 0
        for scalar in text.unicodeScalars {
            let piece: String
            switch scalar {
            case "\n": piece = "\\n"
            case "\r": piece = "\\r"
            case "\t": piece = "\\t"
            case "\\": piece = "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                piece = "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            case _ where (0x80...0x9f).contains(scalar.value) || scalar.properties.generalCategory == .format:
                piece = "\\u{" + String(scalar.value, radix: 16) + "}"
            default: piece = String(scalar)
            }
            guard bytes + piece.utf8.count <= limit else {
                return escaped + "…[cut at \(limit) of \(text.utf8.count) bytes]"
            }
            escaped += piece
            bytes += piece.utf8.count
        }
        return escaped
    }
}
