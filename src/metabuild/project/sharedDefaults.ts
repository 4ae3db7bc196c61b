/**
 * What BuildStream 1.6's and BuildStream 2.8's shipped defaults have in
 * common, written once: the directory variables, the sandbox environment
 * (only SOURCE_DATE_EPOCH differs), the split domains other than `runtime`,
 * the make kind's variables, the make-like kinds' environment and the defaults of import and compose,
 * plus the lazy parse-once table both defaults modules keep their YAML in.
 * Each format's own module (builtinDefaults.ts, defaults2.ts) assembles its
 * YAML from these pieces and what differs.
 */
import { parseYaml, type YMap } from './yamlTree.js';

/** The directory variables of both formats' project defaults, indented as entries of `variables:`. */
export const DIRECTORY_VARIABLES = `
  prefix: "/usr"
  exec_prefix: "%{prefix}"
  bindir: "%{exec_prefix}/bin"
  sbindir: "%{exec_prefix}/sbin"
  libexecdir: "%{exec_prefix}/libexec"
  datadir: "%{prefix}/share"
  sysconfdir: "/etc"
  sharedstatedir: "%{prefix}/com"
  localstatedir: "/var"
  lib: "lib"
  libdir: "%{prefix}/%{lib}"
  debugdir: "%{libdir}/debug"
  includedir: "%{prefix}/include"
  docdir: "%{datadir}/doc"
  infodir: "%{datadir}/info"
  mandir: "%{datadir}/man"
  build-root: /buildstream/%{project-name}/%{element-name}`;

/** The `environment:` section of both formats' project defaults; they differ only in SOURCE_DATE_EPOCH. */
export function sandboxEnvironment(sourceDateEpoch: number): string {
  return `
environment:
  PATH: /usr/bin:/bin:/usr/sbin:/sbin
  SHELL: /bin/sh
  TERM: dumb
  USER: tomjon
  USERNAME: tomjon
  LOGNAME: tomjon
  LC_ALL: C
  HOME: /tmp
  TZ: UTC
  SOURCE_DATE_EPOCH: ${sourceDateEpoch}

environment-nocache: []
`;
}

/** The split domains both formats define alike (all but `runtime`), indented as entries of `split-rules:`. */
export const SPLIT_DOMAINS_BUT_RUNTIME = `
  devel:
  - "%{includedir}"
  - "%{includedir}/**"
  - "%{libdir}/lib*.a"
  - "%{libdir}/lib*.la"
  - "%{libdir}/pkgconfig/*.pc"
  - "%{datadir}/pkgconfig/*.pc"
  - "%{datadir}/aclocal/*.m4"
  debug:
  - "%{debugdir}"
  - "%{debugdir}/**"
  doc:
  - "%{docdir}"
  - "%{docdir}/**"
  - "%{infodir}"
  - "%{infodir}/**"
  - "%{mandir}"
  - "%{mandir}/**"
  locale:
  - "%{datadir}/locale"
  - "%{datadir}/locale/**"
  - "%{datadir}/i18n"
  - "%{datadir}/i18n/**"
  - "%{datadir}/zoneinfo"
  - "%{datadir}/zoneinfo/**"`;

/** Environment shared by the kinds that run make-like tools (manual and make in BuildStream 1, make and autotools in 2). */
export const MAKE_ENVIRONMENT = `
environment:
  MAKEFLAGS: -j%{max-jobs}
  V: 1
environment-nocache:
- MAKEFLAGS
- V
`;

/** The variables of the make kind in both formats, indented as entries of `variables:` (no trailing newline). */
export const MAKE_VARIABLES = `  make-args: >-
    PREFIX="%{prefix}"
  make-install-args: >-
    %{make-args}
    DESTDIR="%{install-root}"
    install
  make: make %{make-args}
  make-install: make -j1 %{make-install-args}`;

/** The defaults of the kinds that are the same in both formats. */
export const COMMON_KIND_DEFAULTS = {
  import: `
config:
  source: /
  target: /
`,
  stack: '',
  compose: `
config:
  integrate: True
  include: []
  exclude: []
  include-orphans: True
`,
};

/**
 * YAML texts by name, each parsed on first use and kept: the defaults are
 * parsed like user files (so composition treats them as any other layer and
 * errors can name a line) but only once per process.
 */
export function parsedOnce(
  texts: Record<string, string>,
  label: (name: string) => string,
): (name: string) => YMap | undefined {
  const parsed = new Map<string, YMap>();
  return (name) => {
    const text = Object.hasOwn(texts, name) ? texts[name] : undefined;
    if (text === undefined) return undefined;
    let found = parsed.get(name);
    if (!found) {
      found = parseYaml(text, label(name));
      parsed.set(name, found);
    }
    return found;
  };
}
