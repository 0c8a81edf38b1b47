/**
 * Test harness: a throwaway PostgreSQL server (initdb(1), pg_ctl(1); PostgreSQL 15 documentation
 * chapter 19) on a free loopback port, with its data, socket and log in a temporary directory; or,
 * when TEST_DATABASE_URL is set, the server that URL names. Each test creates its own database.
 *
 * PostgreSQL refuses to run as root: as root, the server runs as the Debian `postgres` user
 * (runuser(1)), which owns the temporary directory. The binaries come from the Debian packages
 * (`postgresql-15`, or whichever major version `postgresql` installed) under /usr/lib/postgresql.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './free-port.js';

const run = promisify(execFile);

const DEBIAN_POSTGRES = '/usr/lib/postgresql';
const PREFERRED_MAJOR = '15';
const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PostgresServer {
  /** URL of the server's maintenance database (`postgres`), as a superuser. */
  readonly url: string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server and removes its directory (or, on TEST_DATABASE_URL, drops the databases created). */
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<PostgresServer> {
  const external = process.env.TEST_DATABASE_URL;
  if (external !== undefined && external !== '') return useExternalServer(external);
  return startLocalServer();
}

/** The directory of initdb and pg_ctl: PostgreSQL 15 when installed, else the newest major version. */
function postgresBinDir(): string {
  const majors = existsSync(DEBIAN_POSTGRES)
    ? readdirSync(DEBIAN_POSTGRES).filter((v) => existsSync(join(DEBIAN_POSTGRES, v, 'bin', 'initdb')))
    : [];
  if (majors.length === 0) {
    throw new Error(`no PostgreSQL server under ${DEBIAN_POSTGRES}: install the Debian package postgresql (or postgresql-15), or set TEST_DATABASE_URL`);
  }
  const major = majors.includes(PREFERRED_MAJOR) ? PREFERRED_MAJOR : majors.sort((a, b) => Number(b) - Number(a))[0];
  return join(DEBIAN_POSTGRES, major as string, 'bin');
}

async function startLocalServer(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, Number(idOf('-u')), Number(idOf('-g')));
  // As root, every server command runs as `postgres`; otherwise as the current user.
  const command = (program: string, args: readonly string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), [...args]];
  const exec = async (program: string, args: readonly string[]) => {
    const [file, argv] = command(program, args);
    await run(file, argv, { cwd: dir });
  };

  // --no-sync only skips initdb's final flush of this throwaway cluster; the server runs with fsync on.
  await exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  let port = 0;
  for (let attempt = 1; ; attempt += 1) {
    port = await freePort();
    try {
      // -l: the server's output goes to a file, not to a pipe that would keep pg_ctl's caller waiting.
      await exec('pg_ctl', ['-D', data, '-l', log, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on`, '-w', '-t', '60', 'start']);
      break;
    } catch (error) {
      // Another process may have taken the port between the probe and the start: try another.
      if (attempt === 3) throw new Error(`PostgreSQL did not start: ${String(error)}\n${existsSync(log) ? readFileSync(log, 'utf8') : ''}`);
    }
  }

  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    const [file, argv] = command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    try {
      execFileSync(file, argv, { stdio: 'ignore' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // A test process that ends without calling stop() does not leave a server behind.
  process.once('exit', stopNow);

  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    createDatabase: (name) => createDatabase(url, name),
    async stop() {
      if (stopped) return;
      process.removeListener('exit', stopNow);
      stopped = true;
      try {
        await exec('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function useExternalServer(url: string): PostgresServer {
  const created: string[] = [];
  return {
    url,
    async createDatabase(name) {
      const databaseUrl = await createDatabase(url, name);
      created.push(name);
      return databaseUrl;
    },
    async stop() {
      await withClient(url, async (client) => {
        for (const name of created.splice(0)) await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      });
    },
  };
}

async function createDatabase(serverUrl: string, name: string): Promise<string> {
  if (!DATABASE_NAME.test(name)) throw new Error(`database name "${name}" must match ${DATABASE_NAME}`);
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function idOf(flag: '-u' | '-g'): string {
  return execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim();
}
