/**
 * The defaults BuildStream 2.8 ships: its project configuration defaults and
 * the YAML defaults of each element plugin (core plugins of buildstream 2.8.1
 * and those of buildstream-plugins 2.8.0), as data.
 *
 * An element of a BuildStream 2 project expands to the same commands and the
 * same environment here as under `bst` only if these values are the same,
 * value for value, so they are kept as YAML text parsed like user files (the
 * layering code treats them as any other layer, and errors involving them can
 * name a line). Multi-line values use block scalars because the exact line
 * breaks inside a command matter; every value is trimmed when read, as
 * BuildStream trims every scalar.
 */
import { parseYaml, type YMap } from './yamlTree.js';

/** A literal '$' before '{' inside the raw templates below (where `${` would interpolate). */
const D = '$';

/** Laid under every BuildStream 2 project.conf. */
const PROJECT_DEFAULTS = `
element-path: .
ref-storage: inline

variables:
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
  build-root: /buildstream/%{project-name}/%{element-name}
  conf-root: .
  install-root: /buildstream-install
  strip-binaries: ""

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
  SOURCE_DATE_EPOCH: 1321009871

environment-nocache: []

sandbox: {}

split-rules:
  runtime:
  - "%{bindir}"
  - "%{bindir}/*"
  - "%{sbindir}"
  - "%{sbindir}/*"
  - "%{libexecdir}"
  - "%{libexecdir}/*"
  - "%{libdir}/lib*.so*"
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
  - "%{datadir}/zoneinfo/**"

shell:
  command: [ 'sh', '-i' ]

source-provenance-attributes:
  homepage: "The project homepage URL"
  issue-tracker: "The project's issue tracking URL"

defaults:
  targets: []
`;

const STRIP_ONLY = `
  strip-commands:
  - |
    %{strip-binaries}
`;

const MAKE_ENVIRONMENT = `
environment:
  MAKEFLAGS: -j%{max-jobs}
  V: 1
environment-nocache:
- MAKEFLAGS
- V
`;

/** Plugin defaults by kind; kinds without a YAML file (stack, link, junction) have none. */
const KIND_DEFAULTS: Record<string, string> = {
  import: `
config:
  source: /
  target: /
`,
  stack: '',
  link: '',
  junction: '',
  compose: `
config:
  integrate: True
  include: []
  exclude: []
  include-orphans: True
`,
  filter: `
config:
  include: []
  exclude: []
  include-orphans: False
  pass-integration: False
`,
  script: `
variables:
  cwd: /
config:
  root-read-only: False
  commands: []
`,
  manual: `
config:
  configure-commands: []
  build-commands: []
  install-commands: []
${STRIP_ONLY}`,

  make: `
variables:
  make-args: >-
    PREFIX="%{prefix}"
  make-install-args: >-
    %{make-args}
    DESTDIR="%{install-root}"
    install
  make: make %{make-args}
  make-install: make -j1 %{make-install-args}
config:
  build-commands:
  - |
    %{make}
  install-commands:
  - |
    %{make-install}
${STRIP_ONLY}${MAKE_ENVIRONMENT}`,

  autotools: String.raw`
variables:
  autogen: |
    export NOCONFIGURE=1;

    if [ -x %{conf-cmd} ]; then true;
    elif [ -x %{conf-root}/autogen ]; then %{conf-root}/autogen;
    elif [ -x %{conf-root}/autogen.sh ]; then %{conf-root}/autogen.sh;
    elif [ -x %{conf-root}/bootstrap ]; then %{conf-root}/bootstrap;
    elif [ -x %{conf-root}/bootstrap.sh ]; then %{conf-root}/bootstrap.sh;
    else autoreconf -ivf %{conf-root};
    fi
  conf-global: ''
  conf-local: ''
  conf-cmd: "%{conf-root}/configure"
  conf-args: |
    --prefix=%{prefix} \
    --exec-prefix=%{exec_prefix} \
    --bindir=%{bindir} \
    --sbindir=%{sbindir} \
    --sysconfdir=%{sysconfdir} \
    --datadir=%{datadir} \
    --includedir=%{includedir} \
    --libdir=%{libdir} \
    --libexecdir=%{libexecdir} \
    --localstatedir=%{localstatedir} \
    --sharedstatedir=%{sharedstatedir} \
    --mandir=%{mandir} \
    --infodir=%{infodir} %{conf-global} %{conf-local}
  configure: |
    %{conf-cmd} %{conf-args}
  make-args: ""
  make-install-args: >-
    %{make-args}
    DESTDIR="%{install-root}"
    install
  make: make %{make-args}
  make-install: make -j1 %{make-install-args}
  remove-libtool-modules: "false"
  remove-libtool-libraries: "false"
  delete-libtool-archives: |
    if %{remove-libtool-modules} || %{remove-libtool-libraries}; then
      find "%{install-root}" -name "*.la" -print0 | while read -d '' -r file; do
        if grep '^shouldnotlink=yes$' "${D}{file}" &>/dev/null; then
          if %{remove-libtool-modules}; then
            echo "Removing ${D}{file}."
            rm "${D}{file}"
          else
            echo "Not removing ${D}{file}."
          fi
        else
          if %{remove-libtool-libraries}; then
            echo "Removing ${D}{file}."
            rm "${D}{file}"
          else
            echo "Not removing ${D}{file}."
          fi
        fi
      done
    fi
config:
  configure-commands:
  - |
    %{autogen}
  - |
    %{configure}
  build-commands:
  - |
    %{make}
  install-commands:
  - |
    %{make-install}
  - |
    %{delete-libtool-archives}
${STRIP_ONLY}${MAKE_ENVIRONMENT}`,

  cmake: String.raw`
variables:
  build-dir: _builddir
  cmake-global: ''
  cmake-local: ''
  generator: Ninja
  cmake-args: |
    -DCMAKE_VERBOSE_MAKEFILE=ON \
    -DCMAKE_INSTALL_PREFIX:PATH="%{prefix}" \
    -DCMAKE_INSTALL_LIBDIR:PATH="%{lib}" %{cmake-global} %{cmake-local}
  cmake: |
    cmake -B%{build-dir} -H"%{conf-root}" -G"%{generator}" %{cmake-args}
  make: cmake --build %{build-dir} -- ${D}{JOBS}
  make-install: env DESTDIR="%{install-root}" cmake --build %{build-dir} --target install
config:
  configure-commands:
  - |
    %{cmake}
  build-commands:
  - |
    %{make}
  install-commands:
  - |
    %{make-install}
${STRIP_ONLY}
environment:
  JOBS: -j%{max-jobs}
environment-nocache:
- JOBS
`,

  meson: String.raw`
variables:
  build-dir: _builddir
  meson-global: ''
  meson-local: ''
  meson-args: |
    --prefix=%{prefix} \
    --bindir=%{bindir} \
    --sbindir=%{sbindir} \
    --sysconfdir=%{sysconfdir} \
    --datadir=%{datadir} \
    --includedir=%{includedir} \
    --libdir=%{libdir} \
    --libexecdir=%{libexecdir} \
    --localstatedir=%{localstatedir} \
    --sharedstatedir=%{sharedstatedir} \
    --mandir=%{mandir} \
    --infodir=%{infodir} %{meson-global} %{meson-local}
  meson: meson setup %{conf-root} %{build-dir} %{meson-args}
  meson-build: |
    ninja -v -j ${D}{JOBS} -C %{build-dir}
  meson-install: |
    env DESTDIR="%{install-root}" meson install -C %{build-dir} --no-rebuild
config:
  configure-commands:
  - |
    %{meson}
  build-commands:
  - |
    %{meson-build}
  install-commands:
  - |
    %{meson-install}
${STRIP_ONLY}
environment:
  JOBS: |
    %{max-jobs}
environment-nocache:
- JOBS
`,

  pip: `
variables:
  pip: pip
  pip-flags: |
    %{pip} install --no-deps --root=%{install-root} --prefix=%{prefix}
  pip-install-package: |
    %{pip-flags} %{conf-root}
  pip-download-dir: |
    .bst_pip_downloads
  pip-install-dependencies: |
    if [ -e %{pip-download-dir} ]; then %{pip-flags} %{pip-download-dir}/*; fi
config:
  configure-commands: []
  build-commands: []
  install-commands:
  - |
    %{pip-install-package}
  - |
    %{pip-install-dependencies}
${STRIP_ONLY}`,

  setuptools: String.raw`
variables:
  python: python3
  python-build: |
    %{python} %{conf-root}/setup.py build
  install-args: |
    --prefix "%{prefix}" \
    --root "%{install-root}"
  python-install: |
    %{python} %{conf-root}/setup.py install %{install-args}
config:
  configure-commands: []
  build-commands:
  - |
    %{python-build}
  install-commands:
  - |
    %{python-install}
${STRIP_ONLY}`,
};

let projectDefaults: YMap | undefined;
const kindDefaults = new Map<string, YMap>();

/** BuildStream 2's project configuration defaults, laid under project.conf. */
export function format2ProjectDefaults(): YMap {
  projectDefaults ??= parseYaml(PROJECT_DEFAULTS, '(BuildStream 2 project defaults)');
  return projectDefaults;
}

/** The plugin defaults of a BuildStream 2 element kind Granary implements, or undefined. */
export function format2KindDefaults(kind: string): YMap | undefined {
  const text = Object.hasOwn(KIND_DEFAULTS, kind) ? KIND_DEFAULTS[kind] : undefined;
  if (text === undefined) return undefined;
  let parsed = kindDefaults.get(kind);
  if (!parsed) {
    parsed = parseYaml(text, `(BuildStream 2 ${kind} defaults)`);
    kindDefaults.set(kind, parsed);
  }
  return parsed;
}
