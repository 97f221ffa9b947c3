// Drops a file on the page's window as a user dragging it from a file manager would: a
// dragover, then a drop carrying the file (the page detects what it is from its bytes).
import type { Page } from "@playwright/test";

export async function dropFile(page: Page, name: string, bytes: Buffer): Promise<void> {
  await page.evaluate(
    ({ name, b64 }) => {
      const raw = atob(b64);
      const data = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i++) data[i] = raw.charCodeAt(i);
      const transfer = new DataTransfer();
      transfer.items.add(new File([data], name));
      window.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, cancelable: true }));
      window.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, cancelable: true }));
    },
    { name, b64: bytes.toString("base64") },
  );
}
