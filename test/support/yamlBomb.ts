/** A YAML alias bomb, for tests that files from outside are refused, not expanded. */

/** The classic "billion laughs": nine levels, each aliasing the one before ten times (10^9 strings expanded). */
export function billionLaughs(): string {
  const lines = ['a0: &a0 "lol"'];
  for (let level = 1; level <= 9; level++) {
    const previous = `*a${level - 1}`;
    lines.push(`a${level}: &a${level} [${Array(10).fill(previous).join(', ')}]`);
  }
  return `${lines.join('\n')}\n`;
}
