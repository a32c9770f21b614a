/** The demo page served by the gateway at /demo (demo mode only). */
import { type ReactNode, useState } from "react";
import { createRoot } from "react-dom/client";
import { TocsinClient, pushSupported, registerServiceWorker } from "../client/index.js";
import "../element/tocsin-bell.js";
import { iconFor } from "../ui/format.js";
import { NotificationBell, Toaster, TocsinProvider, useNotifications } from "../react/index.js";

interface DemoConfig {
  userId: string;
  token: string;
  wsUrl: string;
  apiBase: string;
  types: string[];
}

type Theme = "auto" | "light" | "dark";

const params = new URLSearchParams(location.search);
// Without ?user= the gateway picks its default user (the one the README's Quick start sends to).
const requestedUser = params.get("user");
const useElement = params.get("ui") === "element";
let user: string | null = requestedUser;

async function fetchConfig(): Promise<DemoConfig> {
  const query = requestedUser === null ? "" : `?user=${encodeURIComponent(requestedUser)}`;
  const response = await fetch(`/demo/config${query}`);
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
    throw new Error(body?.error?.message ?? `/demo/config answered ${response.status}`);
  }
  const config = (await response.json()) as DemoConfig;
  user = config.userId;
  return config;
}

async function send(type: string, count = 1): Promise<void> {
  await fetch("/demo/send", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user, type, count }),
  });
}

/** This page for another user, keeping the other options (theme, ui). */
function pageFor(other: string): string {
  const next = new URLSearchParams(params);
  next.set("user", other);
  return `/demo?${next.toString()}`;
}

function SignedIn({ userId }: { userId: string }): ReactNode {
  const href = pageFor(userId === "42" ? "43" : "42");
  return (
    <p className="signed-in" data-testid="signed-in">
      Signed in as <strong>{userId}</strong> — open <a href={href}>{href}</a> for another user
    </p>
  );
}

function ConfigError({ message }: { message: string }): ReactNode {
  return (
    <main>
      <section className="card error" role="alert" data-testid="config-error">
        <h2>Cannot open the demo for this user</h2>
        <p>
          <code>?user={requestedUser}</code> was refused: {message}.
        </p>
        <p className="meta">
          Open <a href="/demo">/demo</a> for the default user, or <a href={pageFor("42")}>{pageFor("42")}</a>.
        </p>
      </section>
    </main>
  );
}

function applyTheme(theme: Theme): void {
  if (theme === "auto") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.setAttribute("data-theme", theme);
}

function SendPanel({ types }: { types: string[] }): ReactNode {
  return (
    <section className="card">
      <h2>Send a sample notification</h2>
      <div className="types">
        {types.map((type) => (
          <button key={type} type="button" data-type={type} onClick={() => void send(type)}>
            <span className="icon" aria-hidden="true">
              {iconFor(type)}
            </span>
            <code>{type}</code>
          </button>
        ))}
      </div>
    </section>
  );
}

function Status(): ReactNode {
  const { status, unreadCount, unseenCount, isLeader } = useNotifications();
  return (
    <span className="status" data-status={status} data-testid="status" data-leader={String(isLeader)}>
      {status} · {unreadCount} unread · {unseenCount} unseen · {isLeader ? "socket in this tab" : "relayed"}
    </span>
  );
}

function ThemePicker({ theme, onChange }: { theme: Theme; onChange: (t: Theme) => void }): ReactNode {
  return (
    <label className="meta">
      Theme{" "}
      <select value={theme} onChange={(e) => onChange(e.target.value as Theme)} data-testid="theme">
        <option value="auto">System</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>
  );
}

function App({ config, client }: { config: DemoConfig; client: TocsinClient }): ReactNode {
  const [theme, setTheme] = useState<Theme>((params.get("theme") as Theme | null) ?? "auto");
  const change = (t: Theme): void => {
    applyTheme(t);
    setTheme(t);
  };
  return (
    <TocsinProvider client={client}>
      <header>
        <h1>Acme Shop</h1>
        <Status />
        <ThemePicker theme={theme} onChange={change} />
        <NotificationBell />
      </header>
      <main>
        <SignedIn userId={config.userId} />
        <SendPanel types={config.types} />
        <p className="meta">
          Open this page in several tabs: they share one WebSocket and every badge stays in step.
        </p>
      </main>
      <Toaster />
    </TocsinProvider>
  );
}

function ElementApp({ config }: { config: DemoConfig }): ReactNode {
  // The same bell as a web component, fed by a token provider property.
  const ref = (el: HTMLElement | null): void => {
    if (el && !(el as { tokenProvider?: unknown }).tokenProvider) {
      (el as unknown as { tokenProvider: () => Promise<string> }).tokenProvider = async () => (await fetchConfig()).token;
    }
  };
  return (
    <>
      <header>
        <h1>
          Acme Shop<small>web component</small>
        </h1>
        <tocsin-bell ref={ref} gateway-url={config.wsUrl} api-base={config.apiBase} />
      </header>
      <main>
        <SignedIn userId={config.userId} />
        <SendPanel types={config.types} />
      </main>
    </>
  );
}

declare module "react" {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace JSX {
    interface IntrinsicElements {
      "tocsin-bell": React.DetailedHTMLProps<React.HTMLAttributes<HTMLElement>, HTMLElement> & {
        "gateway-url"?: string;
        "api-base"?: string;
        count?: string;
        theme?: string;
      };
    }
  }
}

async function main(): Promise<void> {
  applyTheme((params.get("theme") as Theme | null) ?? "auto");
  const root = createRoot(document.getElementById("root") as HTMLElement);
  let config: DemoConfig;
  try {
    config = await fetchConfig();
  } catch (error) {
    root.render(<ConfigError message={error instanceof Error ? error.message : String(error)} />);
    return;
  }
  if (useElement) {
    root.render(<ElementApp config={config} />);
    return;
  }
  let first: string | null = config.token;
  const client = new TocsinClient({
    url: config.wsUrl,
    apiBase: config.apiBase,
    // The first token comes with the config; later refreshes fetch a new config.
    token: async () => {
      const token = first;
      first = null;
      return token ?? (await fetchConfig()).token;
    },
  });
  (window as unknown as { tocsinDemo: unknown }).tocsinDemo = { client, config };
  // The worker shows web pushes; "Push on this browser" in the bell's preferences subscribes.
  client.attachServiceWorker();
  if (pushSupported()) void registerServiceWorker().catch(() => undefined);
  root.render(<App config={config} client={client} />);
}

void main();
