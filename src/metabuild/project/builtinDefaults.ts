/**
 * The default settings BuildStream 1.6 ships, as YAML data.
 *
 * Projects written for BuildStream rely on these values (paths such as
 * %{prefix} and %{libdir}, the default sandbox environment, the split-rule
 * domains and the command lists of each element kind), so reproducing them
 * value for value is what makes an element expand to the same commands here
 * as under `bst`. They are kept as YAML text, parsed like user files, so that
 * composition treats them exactly like any other layer and errors that involve
 * them can still name a line.
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

/** Project-wide defaults, laid under project.conf. */
const PROJECT_DEFAULTS = String.raw`
variables:${DIRECTORY_VARIABLES}
  install-root: /buildstream-install
  objcopy-link-args: --add-gnu-debuglink
  objcopy-extract-args: |

    --only-keep-debug --compress-debug-sections
  strip-args: |

    --remove-section=.comment --remove-section=.note --strip-unneeded
  strip-binaries: |

    cd "%{install-root}" && find -type f \
      '(' -perm -111 -o -name '*.so*' \
          -o -name '*.cmxs' -o -name '*.node' ')' \
      -exec sh -ec \
      'read -n4 hdr <"$1" # check for elf header
       if [ "$hdr" != "$(printf \\x7fELF)" ]; then
           exit 0
       fi
       debugfile="%{install-root}%{debugdir}/$1"
       mkdir -p "$(dirname "$debugfile")"
       objcopy %{objcopy-extract-args} "$1" "$debugfile"
       chmod 644 "$debugfile"
       strip %{strip-args} "$1"
       objcopy %{objcopy-link-args} "$debugfile" "$1"' - {} ';'
  fix-pyc-timestamps: |

    find "%{install-root}" -name '*.pyc' -exec \
      dd if=/dev/zero of={} bs=1 count=4 seek=4 conv=notrunc ';'

${sandboxEnvironment(1320937200)}
sandbox:
  build-uid: 0
  build-gid: 0

split-rules:
  runtime:
  - "%{bindir}/*"
  - "%{sbindir}/*"
  - "%{libexecdir}/*"
  - "%{libdir}/lib*.so*"
${SPLIT_DOMAINS_BUT_RUNTIME}
`;

const KIND_DEFAULTS: Record<string, string> = {
  manual: `
config:
  configure-commands: []
  build-commands: []
  install-commands: []
  strip-commands:
  - "%{strip-binaries}"
${MAKE_ENVIRONMENT}`,

  make: `
variables:
${MAKE_VARIABLES}
config:
  build-commands:
  - "%{make}"
  install-commands:
  - "%{make-install}"
  strip-commands:
  - "%{strip-binaries}"
${MAKE_ENVIRONMENT}`,

  autotools: `
variables:
  autogen: |
    export NOCONFIGURE=1;

    if [ -x %{conf-cmd} ]; then true;
    elif [ -x autogen ]; then ./autogen;
    elif [ -x autogen.sh ]; then ./autogen.sh;
    elif [ -x bootstrap ]; then ./bootstrap;
    elif [ -x bootstrap.sh ]; then ./bootstrap.sh;
    else autoreconf -ivf;
    fi
  conf-global: ''
  conf-local: ''
  conf-extra: ''
  conf-cmd: ./configure
  conf-args: |

    --prefix=%{prefix} \\
    --exec-prefix=%{exec_prefix} \\
    --bindir=%{bindir} \\
    --sbindir=%{sbindir} \\
    --sysconfdir=%{sysconfdir} \\
    --datadir=%{datadir} \\
    --includedir=%{includedir} \\
    --libdir=%{libdir} \\
    --libexecdir=%{libexecdir} \\
    --localstatedir=%{localstatedir} \\
    --sharedstatedir=%{sharedstatedir} \\
    --mandir=%{mandir} \\
    --infodir=%{infodir} %{conf-extra} %{conf-global} %{conf-local}
  configure: |

    %{conf-cmd} %{conf-args}
  make: make
  make-install: make -j1 DESTDIR="%{install-root}" install
config:
  configure-commands:
  - "%{autogen}"
  - "%{configure}"
  build-commands:
  - "%{make}"
  install-commands:
  - "%{make-install}"
  strip-commands:
  - "%{strip-binaries}"
${MAKE_ENVIRONMENT}`,

  cmake: `
variables:
  build-dir: _builddir
  cmake-global: ''
  cmake-local: ''
  cmake-extra: ''
  generator: Unix Makefiles
  cmake-args: |

    -DCMAKE_INSTALL_PREFIX:PATH="%{prefix}" \\
    -DCMAKE_INSTALL_LIBDIR:PATH="%{lib}" %{cmake-extra} %{cmake-global} %{cmake-local}
  cmake: |

    cmake -B%{build-dir} -H. -G"%{generator}" %{cmake-args}
  make: cmake --build %{build-dir} -- $\{JOBS}
  make-install: env DESTDIR="%{install-root}" cmake --build %{build-dir} --target install
config:
  configure-commands:
  - "%{cmake}"
  build-commands:
  - "%{make}"
  install-commands:
  - "%{make-install}"
  strip-commands:
  - "%{strip-binaries}"
environment:
  JOBS: -j%{max-jobs}
  V: 1
environment-nocache:
- JOBS
- V
`,

  ...COMMON_KIND_DEFAULTS,
};

let projectDefaults: YMap | undefined;

/** The builtin project.conf layer (variables, environment, environment-nocache, sandbox, split-rules). */
export function builtinProjectDefaults(): YMap {
  projectDefaults ??= parseYaml(PROJECT_DEFAULTS, '(builtin project defaults)');
  return projectDefaults;
}

/** Element kinds that have builtin defaults, i.e. the supported kinds. */
export const BUILTIN_KINDS: readonly string[] = Object.keys(KIND_DEFAULTS).sort();

/** The builtin defaults of one element kind (variables, config, environment, environment-nocache), or undefined. */
export const builtinKindDefaults = parsedOnce(KIND_DEFAULTS, (kind) => `(builtin ${kind} defaults)`);
