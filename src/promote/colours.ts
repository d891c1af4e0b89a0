/** The two slots a release runs in; one serves while the other holds the next (or the previous) release. */
export const COLOURS = ["blue", "green"] as const;
export type Colour = (typeof COLOURS)[number];

export function isColour(value: string | undefined): value is Colour {
  return (COLOURS as readonly (string | undefined)[]).includes(value);
}

export function otherColour(colour: Colour): Colour {
  return colour === "blue" ? "green" : "blue";
}

/** Fills a --server, --pm2-app, --unit, --start-cmd or --stop-cmd template for one colour. */
export function fillTemplate(template: string, colour: Colour, port: number): string {
  return template.replaceAll("{colour}", colour).replaceAll("{port}", String(port));
}
