import { useEffect } from 'preact/hooks';
import { BRAND_NAME } from './brand';

/** The product's name in titles: BRAND_NAME, "Gatehouse" by default. */
export const PRODUCT_NAME = BRAND_NAME;

/** Gives each page its own title, so tabs, history and screen readers say where the person is. */
export function useDocumentTitle(pageTitle: string): void {
  useEffect(() => {
    document.title = `${pageTitle} · ${PRODUCT_NAME}`;
  }, [pageTitle]);
}
