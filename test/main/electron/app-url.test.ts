// The Electron shell trusts only its own page: unmachine://app/..., checked by scheme and host
// (Node's URL gives custom schemes the origin "null", so an origin check would refuse it).
import { describe, expect, it } from "vitest";
import { isAppUrl } from "../../../main/electron/app-url.js";

describe("isAppUrl", () => {
  it("accepts the app's own page", () => {
    expect(isAppUrl("unmachine://app/index.html")).toBe(true);
    expect(isAppUrl("unmachine://app/assets/index.js?x=1#y")).toBe(true);
  });

  it("refuses other hosts of the scheme, other schemes and garbage", () => {
    for (const url of ["unmachine://media/tiny/bzimage", "https://app/index.html", "file:///app/index.html", "unmachine://app.evil/x", "not a url", ""]) {
      expect(isAppUrl(url), url).toBe(false);
    }
  });
});
