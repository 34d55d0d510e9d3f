/** The default C2C layer map (upstream `last_aligned`, c2c-reference §2). */

/** Terminal alignment: G(t) = clamp(t + (S - T), 0, S - 1). */
export function terminalLayerMap(receiverLayers: number, sharerLayers: number): number[] {
  const offset = sharerLayers - receiverLayers;
  return Array.from({ length: receiverLayers }, (_, t) => Math.min(Math.max(t + offset, 0), sharerLayers - 1));
}
