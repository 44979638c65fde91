/**
 * Text from a status answer (or any other answer) made safe to print: a terminal acts on control
 * characters (ESC starts a sequence that can retitle the window, clear the screen or hide a link; C1's
 * CSI and OSC do the same in one byte), so each is shown as its `\uXXXX` escape instead.
 */

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex -- as above, but a newline stays one (a multi-line message)
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** One line: every control character escaped, newlines too. */
export const printable = (text: string): string => text.replace(CONTROL, escaped);

/** Several lines (an error message, usage): control characters escaped, newlines kept. */
export const printableLines = (text: string): string => text.replace(CONTROL_BUT_NEWLINE, escaped);

/**
 * A JSON line: JSON.stringify escapes C0 controls but not DEL or C1, which some terminals act on;
 * escaped as JSON escapes, the line parses to the same value.
 */
export const jsonLine = (value: unknown): string => JSON.stringify(value).replace(/[\u007f-\u009f]/g, escaped);
