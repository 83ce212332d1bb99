import type { ComponentChildren } from 'preact';
import { useDocumentTitle } from '../../lib/document-title';

export interface PageHeaderProps {
  title: string;
  /** the tab title when it should differ from the heading */
  documentTitle?: string;
  children?: ComponentChildren;
}

/** The page's one h1, which also names the browser tab. */
export function PageHeader({ title, documentTitle, children }: PageHeaderProps) {
  useDocumentTitle(documentTitle ?? title);
  return (
    <div class="page-header">
      <h1 tabIndex={-1}>{title}</h1>
      {children}
    </div>
  );
}
