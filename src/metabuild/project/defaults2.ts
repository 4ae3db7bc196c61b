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
import {
  COMMON_KIND_DEFAULTS,
  DIRECTORY_VARIABLES,
  MAKE_ENVIRONMENT,
  MAKE_VARIABLES,
  parsedOnce,
  SPLIT_DOMAINS_BUT_RUNTIME,
  sandboxEnvironment,
} from './sharedDefaults.js';
import { parseYaml, type YMap } from './yamlTree.js';

/** A literal '$' before '{' inside the raw templates below (where `${` would interpolate). */
const D = '$';

/** Laid under every BuildStream 2 project.conf. */
const PROJECT_DEFAULTS = `
element-path: .
ref-storage: inline

variables:${DIRECTORY_VARIABLES}
  conf-root: .
  install-root: /buildstream-install
  strip-binaries: ""

${sandboxEnvironment(1321009871)}
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
${SPLIT_DOMAINS_BUT_RUNTIME}

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

/** Plugin defaults by kind; kinds without a YAML file (stack, link, junction) have none. */
const KIND_DEFAULTS: Record<string, string> = {
  ...COMMON_KIND_DEFAULTS,
  link: '',
  junction: '',
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
${MAKE_VARIABLES}
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

/** BuildStream 2's project configuration defaults, laid under project.conf. */
export function format2ProjectDefaults(): YMap {
  projectDefaults ??= parseYaml(PROJECT_DEFAULTS, '(BuildStream 2 project defaults)');
  return projectDefaults;
}

/** The plugin defaults of a BuildStream 2 element kind Granary implements, or undefined. */
export const format2KindDefaults = parsedOnce(KIND_DEFAULTS, (kind) => `(BuildStream 2 ${kind} defaults)`);
