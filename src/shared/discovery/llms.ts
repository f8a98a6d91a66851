/** llms.txt (llmstxt.org): one H1, a blockquote summary, free notes, then H2 sections of links. */

export interface LlmsLink {
  title: string;
  url: string;
  description?: string;
}

export interface LlmsDocument {
  title: string;
  summary: string;
  /** paragraphs and lists, no headings */
  notes: string[];
  /** "Optional" is the section readers may skip when context is short */
  sections: { name: string; links: LlmsLink[] }[];
}

export function renderLlmsTxt(doc: LlmsDocument): string {
  const lines = [`# ${doc.title}`, "", `> ${doc.summary}`, ""];
  for (const note of doc.notes) lines.push(note, "");
  for (const section of doc.sections) {
    lines.push(`## ${section.name}`, "");
    for (const l of section.links)
      lines.push(`- [${l.title}](${l.url})${l.description ? `: ${l.description}` : ""}`);
    lines.push("");
  }
  return lines.join("\n");
}
