// Text that holds file names, made safe to print. A file may be named anything its file system
// allows, and a terminal obeys what it is sent: ESC [ 2 J clears the screen, OSC 0 retitles the
// window, OSC 8 forges a link, OSC 52 writes the clipboard, C1's CSI (U+009B) does the same on
// terminals that honour it, CR rewrites the line, and a bidi override (U+202E) before "gnp.exe"
// shows a program as "exe.png". Each such character is shown as its escape instead, so the name
// stays recognisable and nothing reaches the terminal as a command.
// No tfjs, no vscode: the CLI and the extension both use it.

/** C0 controls, DEL, C1 controls, bidi marks, embeddings, overrides and isolates, line and paragraph separators. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
const UNSAFE_BUT_LINE_FEED = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

const hex = (c: string, digits: number) => c.charCodeAt(0).toString(16).padStart(digits, '0');

/**
 * `text` with every control character replaced by its escape: ESC → `\x1b`, U+009B → `\x9b`,
 * U+202E → `\u202e`. `lineBreaks` keeps "\n" for a message of several lines (a name inside it
 * can then start a line, but not steer the terminal). Backslashes stay as they are, so Windows
 * paths read as paths.
 */
export function printable(text: string, options: { lineBreaks?: boolean } = {}): string {
  return text.replace(options.lineBreaks ? UNSAFE_BUT_LINE_FEED : UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`;
  });
}

/**
 * JSON.stringify(value) with every control character written as a \u escape. JSON.stringify
 * escapes C0 itself but leaves DEL, C1 and the bidi characters raw; escaped, they parse back to
 * the same value and cannot steer the terminal that shows the line.
 */
export function printableJson(value: object): string {
  return JSON.stringify(value).replace(UNSAFE, (c) => `\\u${hex(c, 4)}`);
}
