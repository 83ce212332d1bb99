import { useEffect } from 'preact/hooks';

export const PRODUCT_NAME = 'Gatehouse';

/** Gives each page its own title, so tabs, history and screen readers say where the person is. */
export function useDocumentTitle(pageTitle: string): void {
  useEffect(() => {
    document.title = `${pageTitle} · ${PRODUCT_NAME}`;
  }, [pageTitle]);
}
