// Names the web shell accepts in its URLs, checked before anything is looked up.

import { MEDIA_ROLES } from "../../core/guest/profile.js";

export { isPipeService } from "../../core/pipe/frame-pipe.js";
export const MEDIA_ROLES_SET: ReadonlySet<string> = new Set(MEDIA_ROLES);
