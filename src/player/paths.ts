/** Where the bridge serves the player (./route.ts); the player itself needs them too, so they live apart from Node code. */
export const PLAYER_PATH = '/tali-player.js';
export const PLAYER_ORIGIN_PATH = '/tali-player/origin';
