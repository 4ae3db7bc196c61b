/**
 * Turns a Command into the process to spawn, inside bubblewrap when sandboxed.
 *
 * Profiles:
 * - 'host-tools' (default): the host's /usr, /bin, /sbin, /lib* and /etc read-only,
 *   the exec root bind-mounted writable at its own absolute path (so the relative
 *   and absolute paths Bazel puts on command lines both work), private /tmp, /proc,
 *   /dev, and no network, IPC or PID sharing with the host.
 * - 'hermetic': the staged input root is '/', plus /proc, /dev and a private /tmp;
 *   nothing of the host (BuildStream's chroot semantics).
 * - 'none': runs the command directly, unsandboxed; only when the caller says so.
 *
 * Privileges, when the worker runs as root (bubblewrap then keeps root's
 * capabilities unless told otherwise, and root could mknod a disk and mount it):
 * with an `actionUser`, a host-tools command runs as that unprivileged user
 * through util-linux's setpriv inside the sandbox, with every capability dropped
 * from its bounding set; a hermetic command (which sees nothing of the host and
 * may expect to be root, as BuildStream's do) stays root of its sandbox with only
 * the capabilities builds use (HERMETIC_CAPABILITIES: no mknod, mount, raw I/O,
 * ptrace, modules or handle-based file access). bubblewrap always sets
 * no_new_privs, so setuid programs gain nothing.
 *
 * The environment is exactly the Command's (bubblewrap itself adds only PWD, set
 * to the working directory). arguments[0] is resolved as most REAPI servers do
 * (and as v2.3 specifies): with a '/' it is relative to the working directory,
 * otherwise it is looked up in the Command's own PATH, or, without a PATH, in the
 * working directory and then in the usual system directories. Resolution happens
 * against the sandbox's view of the file system.
 */
import { spawn } from 'node:child_process';
import { access, constants, lstat, readlink, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { INSTALL_BUBBLEWRAP } from '../execution/sandboxProperties.js';
import type { Command_EnvironmentVariable } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code, StatusError } from '../util/status.js';
import { resolveInRoot } from './paths.js';

export type SandboxProfile = 'host-tools' | 'hermetic' | 'none';

export const DEFAULT_BWRAP_PATH = '/usr/bin/bwrap';

/** Where setpriv (util-linux) is in the sandbox's view of /usr. */
export const SETPRIV_PATH = '/usr/bin/setpriv';

/**
 * What a root command of the hermetic profile keeps: what builds do with files
 * (chown, chmod, setuid bits in an install root), switching users and signals;
 * the rest of root's power (CAP_SYS_ADMIN, CAP_MKNOD, CAP_DAC_READ_SEARCH,
 * CAP_SYS_PTRACE, ...) is dropped.
 */
export const HERMETIC_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
];

/** The unprivileged user (and group) actions run as when the worker is root. */
export interface ActionUser {
  readonly uid: number;
  readonly gid: number;
}

/** Host directories shown read-only in the host-tools profile, when present. */
const HOST_TOOL_DIRECTORIES = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32', '/etc'];

/** PATH used to resolve a bare program name when the Command sets no PATH. */
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface SandboxRequest {
  profile: SandboxProfile;
  /** Absolute real path of the staged input root. */
  execRoot: string;
  /** Working directory relative to the input root, already validated ('' for the root). */
  workingDirectory: string;
  arguments: readonly string[];
  environment: readonly Command_EnvironmentVariable[];
  bwrapPath?: string;
  /**
   * Where the host-tools profile takes /usr, /bin, /lib* and /etc from: '/' (the
   * host) by default, or an execution root such as a Debian sid tree, so that an
   * action sees the same toolchain as the client that made it.
   */
  systemRoot?: string;
  /** Set when the worker runs as root: who the command runs as (see the file comment). */
  actionUser?: ActionUser;
}

/** What to spawn: `file` with `args` in `cwd` with exactly `env`. */
export interface SpawnPlan {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

/** A built command: the plan to spawn, and for host-tools what runs inside the sandbox (for a persistent one). */
export interface SandboxCommand {
  plan: SpawnPlan | undefined;
  program: string;
  /**
   * The host-tools command as the sandbox runs it (after setpriv when there is an
   * action user; env with PWD as bubblewrap sets it): what a persistent sandbox
   * binding this exec root runs instead of `plan`.
   */
  inSandbox?: SpawnPlan;
}

/** The namespaces every sandbox of this worker has of its own. */
const NAMESPACE_OPTIONS = ['--die-with-parent', '--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts'];

/** The Command's environment as a spawn env; later duplicates win. */
export function commandEnvironment(variables: readonly Command_EnvironmentVariable[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { name, value } of variables) {
    if (name !== '' && !name.includes('=') && !name.includes('\0') && !value.includes('\0')) env[name] = value;
  }
  return env;
}

/**
 * Builds the spawn plan. Returns undefined for the program when arguments[0] cannot
 * be found (the caller reports "command not found" like a shell would).
 */
export async function buildSandboxCommand(request: SandboxRequest): Promise<SandboxCommand> {
  const { profile, execRoot, workingDirectory } = request;
  if (request.arguments.length === 0) throw new StatusError(Code.INVALID_ARGUMENT, 'Command.arguments is empty');
  const env = commandEnvironment(request.environment);
  const argv0 = request.arguments[0] as string;
  const sandboxCwd = profile === 'hermetic' ? posix.join('/', workingDirectory) : join(execRoot, workingDirectory);
  const systemRoot = request.systemRoot ?? '/';
  if (profile === 'none' && systemRoot !== '/') {
    throw new StatusError(Code.FAILED_PRECONDITION, 'an execution root needs the bubblewrap sandbox');
  }
  const visible = visibility(profile, execRoot, systemRoot);
  const program = await resolveProgram(argv0, sandboxCwd, env.PATH, visible);
  if (program === undefined) return { plan: undefined, program: argv0 };
  const args = [program, ...request.arguments.slice(1)];
  if (profile === 'none') return { plan: { file: program, args: args.slice(1), env, cwd: sandboxCwd }, program };

  const bwrap = request.bwrapPath ?? DEFAULT_BWRAP_PATH;
  const user = request.actionUser;
  let options: string[];
  let command = args;
  if (profile === 'host-tools') {
    options = await hostToolsOptions(execRoot, systemRoot, user);
    if (user) command = [await setprivIn(visible, systemRoot, user), ...dropPrivileges(user), '--', ...args];
  } else {
    options = [...NAMESPACE_OPTIONS];
    if (user) options.push('--cap-drop', 'ALL', ...HERMETIC_CAPABILITIES.flatMap((name) => ['--cap-add', name]));
    options.push('--bind', execRoot, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  }
  options.push('--chdir', sandboxCwd, '--clearenv');
  for (const [name, value] of Object.entries(env)) options.push('--setenv', name, value);
  const plan = { file: bwrap, args: [...options, '--', ...command], env, cwd: execRoot };
  if (profile !== 'host-tools') return { plan, program };
  const inSandbox = {
    file: command[0] as string,
    args: command.slice(1),
    env: { ...env, PWD: sandboxCwd },
    cwd: sandboxCwd,
  };
  return { plan, program, inSandbox };
}

/**
 * bubblewrap's options of the host-tools profile up to the command: its own
 * namespaces, the system directories read-only, /proc, /dev, a private /tmp, and
 * `bound` (an exec root, or the directory of a persistent sandbox's slot)
 * writable at its own path.
 */
export async function hostToolsOptions(
  bound: string,
  systemRoot: string,
  user: ActionUser | undefined,
): Promise<string[]> {
  const options = [...NAMESPACE_OPTIONS];
  for (const directory of HOST_TOOL_DIRECTORIES) options.push(...(await hostDirectoryMount(directory, systemRoot)));
  options.push('--proc', '/proc', '--dev', '/dev');
  if (user) options.push('--perms', '1777');
  options.push('--tmpfs', '/tmp');
  // bubblewrap makes the bound directory's parents as private as on the host (often
  // 0700 temporary directories): the action's user must be able to pass through them.
  if (user) for (const parent of ancestorsOf(bound)) options.push('--perms', '0755', '--dir', parent);
  options.push('--bind', bound, bound);
  return options;
}

/** Whether the sandbox's view of the host shows `path` (a system directory's content), for the host-tools profile. */
export function shownByHostTools(path: string): boolean {
  return HOST_TOOL_DIRECTORIES.some((d) => path === d || path.startsWith(`${d}/`));
}

/** The directories above an absolute path, outermost first ('/a/b/c' gives '/a', '/a/b'). */
function ancestorsOf(path: string): string[] {
  const parts = path.split('/').filter((part) => part !== '');
  return parts.slice(0, -1).map((_, index) => `/${parts.slice(0, index + 1).join('/')}`);
}

/** setpriv's arguments that make the command `user`, without supplementary groups or capabilities. */
function dropPrivileges(user: ActionUser): string[] {
  return [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
}

/** SETPRIV_PATH when the sandbox shows it; FAILED_PRECONDITION naming what is missing otherwise. */
async function setprivIn(visible: Visibility, systemRoot: string, user: ActionUser): Promise<string> {
  const hostPath = await visible(SETPRIV_PATH);
  if (hostPath !== undefined && (await isExecutableFile(hostPath))) return SETPRIV_PATH;
  const where = systemRoot === '/' ? 'this host' : `the execution root ${systemRoot}`;
  throw new StatusError(
    Code.FAILED_PRECONDITION,
    `cannot run the action as uid ${user.uid}: ${SETPRIV_PATH} (util-linux) is missing in ${where}`,
  );
}

/**
 * How each system directory is shown, by its path on the host: looked at once per
 * process (eight lstat calls saved per action), as /usr, /bin, /lib* and /etc of a
 * host or an execution root do not change shape while a worker runs.
 */
const hostDirectoryMounts = new Map<string, Promise<string[]>>();

function hostDirectoryMount(directory: string, systemRoot: string): Promise<string[]> {
  const source = join(systemRoot, directory);
  let mount = hostDirectoryMounts.get(source);
  if (!mount) {
    mount = lookUpHostDirectoryMount(directory, source);
    hostDirectoryMounts.set(source, mount);
  }
  return mount;
}

async function lookUpHostDirectoryMount(directory: string, source: string): Promise<string[]> {
  try {
    const stats = await lstat(source);
    if (stats.isSymbolicLink()) return ['--symlink', await readlink(source), directory];
    if (stats.isDirectory()) return ['--ro-bind', source, directory];
  } catch {
    // Absent on this host (e.g. /lib32).
  }
  return [];
}

/** Maps an absolute path as the sandboxed command sees it to the host path to check, or undefined if invisible. */
export type Visibility = (sandboxPath: string) => Promise<string | undefined>;

/**
 * The sandbox's view of the file system, for looking at what a command named (its
 * program, the target of an absolute output symlink) without ever looking at more
 * of the host than the command itself could see.
 */
export function visibility(profile: SandboxProfile, execRoot: string, systemRoot: string): Visibility {
  if (profile === 'none') return async (path) => path;
  if (profile === 'hermetic') return (path) => resolveInRoot(execRoot, path.slice(1), 'chroot', true);
  return async (path) => {
    if (path === execRoot || path.startsWith(`${execRoot}/`)) {
      return resolveInRoot(execRoot, path.slice(execRoot.length + 1), 'host', true);
    }
    if (!shownByHostTools(path)) return undefined;
    return systemRoot === '/' ? path : resolveInRoot(systemRoot, path.slice(1), 'chroot', true);
  };
}

async function resolveProgram(
  argv0: string,
  sandboxCwd: string,
  pathVariable: string | undefined,
  visible: Visibility,
): Promise<string | undefined> {
  if (argv0 === '') return undefined;
  if (argv0.includes('/')) return posix.resolve(sandboxCwd, argv0);
  const candidates: string[] = [];
  if (pathVariable === undefined) candidates.push(sandboxCwd, ...FALLBACK_PATH.split(':'));
  else candidates.push(...pathVariable.split(':').map((entry) => posix.resolve(sandboxCwd, entry || '.')));
  for (const directory of candidates) {
    const candidate = posix.join(directory, argv0);
    const hostPath = await visible(candidate);
    if (hostPath !== undefined && (await isExecutableFile(hostPath))) return candidate;
  }
  return undefined;
}

/** Whether `path` is a regular file this process may execute (following symlinks). */
export async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const usable = new Map<string, Promise<void>>();

/**
 * Checks once per bwrap path that bubblewrap can create the namespaces the
 * sandbox uses here (it cannot, for example, in a plain chroot or where user
 * namespaces are disabled). Fails with FAILED_PRECONDITION and the reason instead
 * of letting anything run unsandboxed.
 */
export function assertSandboxUsable(profile: SandboxProfile, bwrapPath = DEFAULT_BWRAP_PATH): Promise<void> {
  if (profile === 'none') return Promise.resolve();
  let pending = usable.get(bwrapPath);
  if (!pending) {
    pending = probe(bwrapPath);
    usable.set(bwrapPath, pending);
    // A failed probe is not cached: the environment may be fixed without a restart.
    pending.catch(() => usable.delete(bwrapPath));
  }
  return pending;
}

function probe(bwrapPath: string): Promise<void> {
  const args = [...NAMESPACE_OPTIONS];
  args.push('--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--', bwrapPath, '--version');
  return new Promise((resolve, reject) => {
    const fail = (reason: string) =>
      reject(
        new StatusError(
          Code.FAILED_PRECONDITION,
          `the sandbox cannot run on this worker (${bwrapPath}: ${reason.trim() || 'failed'}); ` +
            'bubblewrap needs to create mount, PID and network namespaces (run as root, or enable ' +
            'unprivileged user namespaces); refusing to run actions unsandboxed',
        ),
      );
    let stderr = '';
    const child = spawn(bwrapPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < 4096) stderr += text;
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(
          new StatusError(
            Code.FAILED_PRECONDITION,
            `the sandbox cannot run on this worker: ${bwrapPath} is not there; ${INSTALL_BUBBLEWRAP}; ` +
              'refusing to run actions unsandboxed',
          ),
        );
      } else fail(error.message);
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else fail(stderr || `exit ${code ?? signal}`);
    });
  });
}

/** Why bubblewrap cannot sandbox actions here (not installed, no namespaces), or undefined when it can. */
export function bubblewrapProblem(bwrapPath = DEFAULT_BWRAP_PATH): Promise<string | undefined> {
  return assertSandboxUsable('host-tools', bwrapPath).then(
    () => undefined,
    (error: Error) => error.message,
  );
}

/** True when bubblewrap exists and can create its namespaces here (see assertSandboxUsable). */
export async function bubblewrapAvailable(bwrapPath = DEFAULT_BWRAP_PATH): Promise<boolean> {
  return assertSandboxUsable('host-tools', bwrapPath).then(
    () => true,
    () => false,
  );
}
