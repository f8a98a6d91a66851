/** QR codes drawn locally as inline SVG (no image service, nothing fetched). */
import QRCode from "qrcode";

/** Fills `box` with a QR of `text`; returns false if the text is too long for a QR code. */
export async function showQr(box: HTMLElement, text: string, label: string): Promise<boolean> {
  box.replaceChildren();
  try {
    const svg = await QRCode.toString(text, { type: "svg", margin: 2, errorCorrectionLevel: "L" });
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    const el = document.importNode(doc.documentElement, true);
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", label);
    box.append(el);
    return true;
  } catch {
    const p = document.createElement("p");
    p.textContent = "Too long for a QR code: use the copy button.";
    box.append(p);
    return false;
  }
}
