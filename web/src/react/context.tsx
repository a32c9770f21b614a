import { createContext, type ReactNode, useContext, useEffect, useRef, useState } from "react";
import { TocsinClient, type TokenProvider } from "../client/index.js";

const TocsinContext = createContext<TocsinClient | null>(null);

export type TocsinProviderProps =
  | { client: TocsinClient; children?: ReactNode }
  | {
      /** WebSocket URL of the gateway, e.g. `wss://notify.example.com/v1/ws`. */
      url: string;
      apiBase?: string;
      /** A token or a function returning one; the latest prop is used on every refresh. */
      token: TokenProvider | string;
      pageSize?: number;
      children?: ReactNode;
    };

/** Provides one TocsinClient to the tree. Pass `client` to share one you built yourself. */
export function TocsinProvider(props: TocsinProviderProps): ReactNode {
  const tokenRef = useRef<TokenProvider | string | null>(null);
  tokenRef.current = "client" in props ? null : props.token;
  const [client] = useState<TocsinClient>(() => {
    if ("client" in props) return props.client;
    return new TocsinClient({
      url: props.url,
      apiBase: props.apiBase,
      pageSize: props.pageSize,
      token: () => {
        const token = tokenRef.current;
        if (token === null) throw new Error("no token");
        return typeof token === "string" ? token : token();
      },
    });
  });
  const owned = !("client" in props);
  useEffect(() => {
    void client.start();
    return owned ? () => client.stop() : undefined;
  }, [client, owned]);
  return <TocsinContext.Provider value={client}>{props.children}</TocsinContext.Provider>;
}

export function useTocsinClient(): TocsinClient {
  const client = useContext(TocsinContext);
  if (!client) throw new Error("Tocsin hooks and components must be used inside <TocsinProvider>");
  return client;
}
