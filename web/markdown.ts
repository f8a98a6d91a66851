/**
 * Markdown for answers, which are untrusted: raw HTML is shown as text, links keep only http(s)
 * and mailto targets, and images become plain links (the page loads nothing from elsewhere).
 */
import { Marked } from "marked";

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

const safeUrl = (href: string) => (/^(https?:|mailto:)/i.test(href.trim()) ? href.trim() : undefined);

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html: ({ text }) => escapeHtml(text),
    link({ href, text }) {
      const url = safeUrl(href);
      return url
        ? `<a href="${escapeHtml(url)}" rel="noopener noreferrer nofollow" target="_blank">${escapeHtml(text)}</a>`
        : escapeHtml(text);
    },
    image({ href, text }) {
      const url = safeUrl(href);
      return url
        ? `<a href="${escapeHtml(url)}" rel="noopener noreferrer nofollow" target="_blank">${escapeHtml(text || url)}</a>`
        : escapeHtml(text);
    },
  },
});

/** Runs of U+FFFD (bytes that were not UTF-8) become one marker, as in the MCP chat tool. */
export const tidyInvalidUtf8 = (text: string) => text.replace(/\uFFFD(?:\s*\uFFFD)*/g, "[invalid UTF-8]");

export function renderMarkdown(source: string): string {
  return marked.parse(tidyInvalidUtf8(source), { async: false });
}
