import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { FormAlert, Loading } from '../components/ui';

/**
 * A page loaded on first visit with a dynamic import (its own chunk), without pulling in
 * preact/compat for React.lazy and Suspense.
 */
export function lazyRoute<P extends object>(load: () => Promise<{ default: ComponentType<P> }>): ComponentType<P> {
  let Loaded: ComponentType<P> | undefined;
  let loading: Promise<ComponentType<P>> | undefined;

  return function LazyRoute(props: P) {
    const [, setReady] = useState(Loaded !== undefined);
    const [failed, setFailed] = useState(false);

    useEffect(() => {
      if (Loaded !== undefined) return;
      let live = true;
      loading ??= load().then((module) => (Loaded = module.default));
      loading.then(
        () => live && setReady(true),
        () => {
          loading = undefined;
          if (live) setFailed(true);
        },
      );
      return () => {
        live = false;
      };
    }, []);

    if (failed) return <FormAlert>This page could not be loaded. Check your connection and reload the page.</FormAlert>;
    return Loaded === undefined ? <Loading /> : <Loaded {...props} />;
  };
}
