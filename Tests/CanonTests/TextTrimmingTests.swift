import Canon
import Foundation
import Testing

@Suite("Trimming white space without Foundation")
struct TextTrimmingTests {
    static let samples = [
        "", " ", "plain", "  both ends  ", "\t\n\r\u{0B}\u{0C}tabs and breaks\r\n", "\u{A0}no-break\u{A0}", "\u{3000}ideographic\u{3000}",
        "\u{2028}line\u{2029}", "\u{85}next line\u{85}", "\u{2003}em\u{200A}", "\u{200B}zero width\u{200B}",
        " \u{1F642} emoji ", " e\u{301} combining ", "\u{1}control stays\u{1}", "inner  space  stays", "\u{FEFF}bom\u{FEFF}", " \u{1680}ogham",
        " x", "x ", "é", " é ", "\u{7F}", "   \n\t ",
    ]

    /// The same text as `trimmingCharacters(in: .whitespacesAndNewlines)` for every sample.
    @Test(arguments: samples)
    func trimsWhatFoundationTrims(_ text: String) {
        #expect(text.trimmingWhiteSpace() == text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
