/**
 * The Terraform configuration, checked statically (terraform/validate checks it against the provider): what it
 * deploys must match the code it deploys (entry points, job definitions, workflow), and its IAM
 * must stay least-privilege and private by default.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { LocalBucket } from '../../local/bucket.js';
import {
  connectorTimeouts,
  loadDefinitions,
  START_HEADROOM_SECONDS,
  workflowWorstCaseSeconds,
} from '../../local/jobs/definitions.js';
import { reconstructInterpreter, workflowEnv } from '../../local/reconstruct-workflow.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadServiceConfig } from '../../functions/config/service.js';
import { LIMIT_ENV } from '../../jobs/frames/limits.js';
import { createLogger } from '../../lib/log.js';
import {
  type Body,
  type TerraformModule,
  child,
  dynamicBlock,
  loadModule,
  resource,
  strings,
} from '../support/terraform.js';

const root = join(import.meta.dirname, '..', '..', '..');
const tfDir = join(root, 'terraform');

const definitions = loadDefinitions();

let tf: TerraformModule;
before(async () => {
  tf = await loadModule(tfDir);
});

/** The literal entries of a `local` map written as an HCL object (keys unquoted or quoted). */
function functionsMap(): Record<string, Body> {
  return tf.locals.functions as Record<string, Body>;
}

const memoryGiB = (memory: string): number => {
  const match = /^(\d+(?:\.\d+)?)(Gi|Mi)$/.exec(memory);
  assert.ok(match, `memory ${memory} is not in Gi or Mi`);
  return Number(match[1]) / (match[2] === 'Mi' ? 1024 : 1);
};

describe('terraform layout', () => {
  it('has the module files split by concern, each parsing', () => {
    for (const file of ['versions.tf', 'variables.tf', 'outputs.tf', 'main.tf', 'apis.tf', 'storage.tf']) {
      assert.ok(tf.files.has(file), `${file} missing`);
    }
    for (const concern of ['network', 'redis', 'firestore', 'functions', 'eventarc', 'scheduler', 'workflow', 'jobs']) {
      assert.ok(tf.files.has(`${concern}.tf`), `${concern}.tf missing`);
    }
    for (const concern of ['iam', 'secrets']) assert.ok(tf.files.has(`${concern}.tf`), `${concern}.tf missing`);
  });

  it('pins the google provider major terraform/validate checks against (direct VPC egress needs 7.21+)', () => {
    const text = tf.files.get('versions.tf') ?? '';
    assert.match(text, /source\s*=\s*"hashicorp\/google"/);
    assert.match(text, /version\s*=\s*">= 8\.0, < 9\.0"/);
    assert.match(readFileSync(join(tfDir, 'validate'), 'utf8'), /^google_version=8\.0\.0$/m);
  });
});

describe('stage jobs', () => {
  it('reads the one job definitions file and makes one Cloud Run Job per stage', () => {
    assert.match(String(tf.locals.job_definitions), /^\$\{jsondecode\(file\(".*\/jobs\/definitions\.json"\)\)\}$/);
    assert.equal(tf.locals.stages, '${local.job_definitions.stages}');
    const jobs = tf.blocks.filter((b) => b.type === 'google_cloud_run_v2_job');
    assert.equal(jobs.length, 1, 'one for_each resource, so no stage can be left out');
    assert.equal(jobs[0]?.body.for_each, '${local.stages}');
    assert.ok(Object.keys(definitions.stages).length >= 7);
  });

  it('runs each stage with its definition: image, argv, resources, timeout, retries, own account', () => {
    const task = child(child(resource(tf, 'google_cloud_run_v2_job', 'stage'), 'template'), 'template');
    const container = child(task, 'containers');
    assert.equal(container.image, '${var.images[each.value.image]}');
    assert.equal(container.command, '${each.value.command}');
    assert.match(String(child(container, 'resources').limits), /cpu = each\.value\.cpu, memory = each\.value\.memory/);
    assert.equal(task.timeout, '${each.value.timeout_seconds}s');
    assert.equal(task.max_retries, '${each.value.max_retries}');
    assert.equal(task.service_account, '${google_service_account.job[each.key].email}');
    const env = dynamicBlock(container, 'env');
    assert.match(env.forEach, /^\$\{merge\(lookup\(var\.stage_environment, each\.key, \{\}\), \{/);
    assert.match(env.forEach, /SPLATFLOW_STAGE\s+= each\.key/);
    // The frames stage checks its input against the very list the functions admit from.
    assert.match(env.forEach, /SPLATFLOW_INPUT_LOCATIONS = join\(",", local\.input_locations\)/);
    // The frames job's input ceilings are the very variables the functions' limits come from, one per limit.
    assert.match(env.forEach, /each\.key == "frames" \? local\.input_limits_env : \{\}/);
    const ceilings = tf.locals.input_limits_env as Record<string, string>;
    assert.deepEqual(Object.keys(ceilings).sort(), Object.values(LIMIT_ENV).sort());
    assert.equal(ceilings.SPLATFLOW_MAX_INPUT_BYTES, '${tostring(var.upload_max_bytes)}');
    assert.equal(
      (tf.locals.function_env as Record<string, string>).UPLOAD_MAX_BYTES,
      '${tostring(var.upload_max_bytes)}',
    );
    assert.equal(
      (tf.locals.function_env as Record<string, string>).INPUT_LOCATIONS,
      '${join(",", local.input_locations)}',
    );
    assert.ok(
      !('WEBHOOK_ALLOW_HOSTS' in (tf.locals.function_env as Record<string, string>)),
      'no allow-list in the cloud',
    );
    assert.deepEqual(env.content, { name: '${env.key}', value: '${env.value}' });
    for (const [name, stage] of Object.entries(definitions.stages)) {
      assert.ok(definitions.images[stage.image], `stage ${name} names image ${stage.image}, not in images`);
      assert.ok(stage.timeout_seconds > 0 && stage.timeout_seconds <= 86400, `stage ${name} timeout`);
      assert.ok(stage.max_retries >= 0 && stage.max_retries <= 10, `stage ${name} retries`);
    }
  });

  it('gives GPU stages an NVIDIA L4 with the GPU limit, zonal redundancy off, and enough CPU and memory', () => {
    const job = resource(tf, 'google_cloud_run_v2_job', 'stage');
    const task = child(child(job, 'template'), 'template');
    const selector = dynamicBlock(task, 'node_selector');
    assert.equal(selector.forEach, '${each.value.gpu > 0 ? [each.value.gpu] : []}');
    assert.equal(selector.content.accelerator, 'nvidia-l4');
    assert.equal(task.gpu_zonal_redundancy_disabled, '${each.value.gpu > 0 ? true : null}');
    const limits = String(child(child(task, 'containers'), 'resources').limits);
    assert.match(
      limits,
      /"nvidia\.com\/gpu" = tostring\(each\.value\.gpu\)\s*\}\s*:\s*key => count if each\.value\.gpu > 0/,
    );
    const gpuStages = Object.entries(definitions.stages).filter(([, stage]) => stage.gpu > 0);
    assert.ok(gpuStages.length > 0, 'no GPU stage defined');
    for (const [name, stage] of gpuStages) {
      // Cloud Run's floor for an L4: 4 CPUs and 16 GiB; one GPU per instance.
      assert.equal(stage.gpu, 1, `stage ${name}: Cloud Run gives one L4 per instance`);
      assert.ok(Number(stage.cpu) >= 4, `stage ${name}: an L4 needs at least 4 CPUs`);
      assert.ok(memoryGiB(stage.memory) >= 16, `stage ${name}: an L4 needs at least 16 GiB`);
    }
  });
});

describe('functions', () => {
  it('deploys every function as gen2 from the built source with its own account and its secrets', () => {
    const fn = resource(tf, 'google_cloudfunctions2_function', 'this');
    assert.equal(fn.for_each, '${local.functions}');
    const build = child(fn, 'build_config');
    assert.equal(build.entry_point, '${each.value.entry_point}');
    assert.match(String(build.runtime), /^nodejs(2[2-9])$/);
    // The archive holds dist/: the cloud build must not run `npm run build` again.
    assert.deepEqual(build.environment_variables, { GOOGLE_NODE_RUN_SCRIPTS: '', ONNXRUNTIME_NODE_INSTALL: 'skip' });
    const service = child(fn, 'service_config');
    assert.equal(service.service_account_email, '${google_service_account.function[each.key].email}');
    const secrets = dynamicBlock(service, 'secret_environment_variables');
    assert.equal(secrets.forEach, '${local.function_secrets}');
    assert.equal(secrets.content.key, '${secret_environment_variables.key}');
    assert.equal(
      secrets.content.secret,
      '${google_secret_manager_secret.this[secret_environment_variables.value].secret_id}',
    );
    const secretEnv = tf.locals.function_secrets as Record<string, string>;
    assert.deepEqual(secretEnv, { REDIS_PASSWORD: 'redis-auth', WEBHOOK_SECRET: 'webhook-secret' });
    const values = tf.locals.secret_values as Record<string, string>;
    assert.equal(values['redis-auth'], '${google_redis_instance.queue.auth_string}');
    assert.equal(values['webhook-secret'], '${random_password.webhook.result}');
    const env = tf.locals.function_env as Record<string, string>;
    for (const name of Object.keys(secretEnv)) assert.ok(!(name in env), `${name} must not be a plain variable`);
    assert.match(env.REDIS_URL ?? '', /^rediss:\/\//, 'Redis is reached over TLS');
    assert.equal(env.REDIS_TLS_CA, '${join("", google_redis_instance.queue.server_ca_certs[*].cert)}');
  });

  it('reaches Redis by direct VPC egress for private ranges only, and uses no connector anywhere', () => {
    const service = child(resource(tf, 'google_cloudfunctions2_function', 'this'), 'service_config');
    assert.equal(service.direct_vpc_egress, 'VPC_EGRESS_PRIVATE_RANGES_ONLY');
    const nic = child(service, 'direct_vpc_network_interface');
    assert.equal(nic.subnetwork, '${google_compute_subnetwork.functions.name}');
    for (const block of tf.blocks) {
      assert.ok(!block.type.includes('vpc_access_connector'), `${block.type}.${block.name}: a connector`);
      for (const [path] of strings(block.body)) assert.ok(!path.includes('vpc_connector'), `${block.name}: ${path}`);
    }
  });

  it('ships the source .gcloudignore describes: dist/ and package files, without what it ignores', () => {
    const include = tf.locals.function_source_include as string[];
    const exclude = tf.locals.function_source_exclude as string[];
    assert.deepEqual(include, ['dist/**', 'package.json', 'package-lock.json']);
    const ignored = readFileSync(join(root, '.gcloudignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    for (const entry of ignored) {
      const underIncluded = include.some((pattern) => entry.startsWith(pattern.replace(/\*\*$/, '')));
      if (underIncluded) assert.ok(exclude.includes(entry), `.gcloudignore ignores ${entry}; the archive must too`);
      assert.ok(!include.includes(entry), `.gcloudignore ignores ${entry}, the archive includes it`);
    }
  });

  it('starts onUpload from Eventarc on finalized uploads, with retries', () => {
    const trigger = dynamicBlock(resource(tf, 'google_cloudfunctions2_function', 'this'), 'event_trigger');
    assert.match(trigger.forEach, /each\.key == "on-upload" \? \[google_storage_bucket\.this\["uploads"\]\.name\]/);
    assert.equal(trigger.content.event_type, 'google.cloud.storage.object.v1.finalized');
    assert.equal(trigger.content.retry_policy, 'RETRY_POLICY_RETRY');
    assert.equal(trigger.content.service_account_email, '${google_service_account.eventarc.email}');
    assert.deepEqual(child(trigger.content, 'event_filters'), { attribute: 'bucket', value: '${event_trigger.value}' });
    assert.equal(functionsMap()['on-upload']?.entry_point, 'onUpload');
  });

  it('calls the dispatcher, reconciler and lease expiry on a schedule with OIDC', () => {
    const schedules = tf.locals.schedules as Record<string, string>;
    assert.deepEqual(Object.keys(schedules).sort(), ['dispatch', 'expire-leases', 'reconcile']);
    for (const name of Object.keys(schedules)) assert.ok(functionsMap()[name], `schedule for unknown function ${name}`);
    const job = resource(tf, 'google_cloud_scheduler_job', 'this');
    const oidc = child(child(job, 'http_target'), 'oidc_token');
    assert.equal(oidc.service_account_email, '${google_service_account.scheduler.email}');
    assert.equal(oidc.audience, child(job, 'http_target').uri);
  });

  it('exports from the build every entry point Terraform deploys', async () => {
    const build = join(root, 'dist', 'functions', 'index.js');
    assert.ok(existsSync(build), 'dist/functions/index.js missing: run npm run build');
    const entryPoints = Object.values(functionsMap()).map((fn) => String(fn.entry_point));
    // The module reads and validates its configuration at load: give it exactly what Terraform
    // sets (with sample values for what only exists once deployed), so a variable the functions
    // require, or a value they refuse, fails here rather than at the first deployment.
    const secrets = Object.keys(tf.locals.function_secrets as Body).map((name) => [name, 'x'.repeat(48)]);
    Object.assign(process.env, { METADATA_SERVER_DETECTION: 'none' }, Object.fromEntries(secrets), deployedEnv());
    const { getFunction } = await import('@google-cloud/functions-framework/testing');
    const loaded = (await import(build)) as { shutdown?: () => Promise<void> };
    try {
      const missing = entryPoints.filter((name) => !getFunction(name));
      assert.deepEqual(missing, [], `Terraform deploys entry points the build does not export`);
    } finally {
      await loaded.shutdown?.();
    }
  });
});

/** What only exists once deployed, as Terraform writes it → a value of the same shape. */
const DEPLOYED: Record<string, string> = {
  'google_redis_instance.queue.host': '10.20.0.3',
  'google_redis_instance.queue.port': '6378',
  'join("", google_redis_instance.queue.server_ca_certs[*].cert)':
    '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  'google_storage_bucket.this["work"].name': 'test-project-splatflow-work',
  'join(",", local.input_locations)': 'gs://test-project-splatflow-uploads/uploads/',
  'var.project_id': 'test-project',
  'local.function_urls["status"]': 'https://us-central1-test-project.cloudfunctions.net/splatflow-status',
  'tostring(sum(values(local.stage_timeouts)))': String(workflowWorstCaseSeconds(loadDefinitions())),
};

/** Terraform's function environment with every `${…}` replaced by a default or a deployed-like value. */
function deployedEnv(): Record<string, string> {
  const evaluate = (template: string): string =>
    template.replace(/\$\{([^{}]*)\}/g, (_, expression: string) => {
      if (expression in DEPLOYED) return DEPLOYED[expression] ?? '';
      const variable = /^(?:tostring\()?var\.(\w+)\)?$/.exec(expression)?.[1];
      const preset = variable === undefined ? undefined : tf.variables.get(variable)?.default;
      if (typeof preset === 'string' || typeof preset === 'number') return String(preset);
      const local = /^local\.(\w+)$/.exec(expression)?.[1];
      if (local && typeof tf.locals[local] === 'string') return evaluate(tf.locals[local]);
      throw new Error(`no sample value for \${${expression}}: add one to DEPLOYED`);
    });
  const env = tf.locals.function_env as Record<string, string>;
  const fn = child(resource(tf, 'google_cloudfunctions2_function', 'this'), 'service_config');
  // Per-function additions, as the dispatcher gets them (tests/plan.tftest.hcl checks their values per function).
  assert.deepEqual(
    [...String(fn.environment_variables).matchAll(/(\w+) = /g)].map((match) => match[1]),
    ['AUTO_DISPATCH', 'AUTH_AUDIENCE'],
  );
  return {
    ...Object.fromEntries(Object.entries(env).map(([name, value]) => [name, evaluate(value)])),
    AUTO_DISPATCH: 'true',
    AUTH_AUDIENCE: 'https://us-central1-test-project.cloudfunctions.net/splatflow-dispatch',
  };
}

describe('redis', () => {
  it('is Redis 7 with AUTH and in-transit TLS on private service access, its AUTH string in Secret Manager', () => {
    const redis = resource(tf, 'google_redis_instance', 'queue');
    assert.match(String(redis.redis_version), /^REDIS_7_/);
    assert.equal(redis.auth_enabled, true);
    assert.equal(redis.transit_encryption_mode, 'SERVER_AUTHENTICATION');
    assert.equal(redis.connect_mode, 'PRIVATE_SERVICE_ACCESS');
    const version = resource(tf, 'google_secret_manager_secret_version', 'this');
    assert.equal(version.secret_data, '${local.secret_values[each.key]}');
    assert.equal((tf.locals.secret_values as Body)['redis-auth'], '${google_redis_instance.queue.auth_string}');
  });
});

describe('workflow', () => {
  const yamlPath = join(root, 'workflows', 'reconstruct.yaml');
  const userEnv = () =>
    resource(tf, 'google_workflows_workflow', 'reconstruct').user_env_vars as Record<string, string>;

  it('deploys workflows/reconstruct.yaml verbatim, with its own account', () => {
    const workflow = resource(tf, 'google_workflows_workflow', 'reconstruct');
    // file() does not interpolate, so the YAML's ${...} need no $${} escaping; templatefile would.
    assert.equal(workflow.source_contents, '${file("${local.repo_root}/workflows/reconstruct.yaml")}');
    assert.equal(workflow.service_account, '${google_service_account.workflow.id}');
    assert.equal(workflow.name, '${local.workflow_name}');
    assert.equal((tf.locals.function_env as Record<string, string>).WORKFLOW_NAME, '${local.workflow_name}');
  });

  it('sets every variable the workflow reads, and waits for each stage as long as Cloud Run may run it', () => {
    const env = userEnv();
    assert.equal(env.JOB_PREFIX, '${var.name_prefix}-', 'jobs are named <prefix>-<stage> (jobs.tf)');
    assert.equal(resource(tf, 'google_cloud_run_v2_job', 'stage').name, '${var.name_prefix}-${each.key}');
    // The rule and headroom of local/jobs/definitions.ts (connectorTimeouts, START_HEADROOM_SECONDS).
    const { gpu, cpu } = START_HEADROOM_SECONDS;
    assert.equal(env.STAGE_TIMEOUTS, '${jsonencode(local.stage_timeouts)}');
    assert.ok(
      String(tf.locals.stage_timeouts).includes(
        `for name, stage in local.stages : name => (stage.timeout_seconds + (stage.gpu > 0 ? ${gpu} : ${cpu})) * (stage.max_retries + 1)`,
      ),
      String(tf.locals.stage_timeouts),
    );
    const yaml = readFileSync(yamlPath, 'utf8');
    for (const [, name] of yaml.matchAll(/sys\.get_env\(\s*"([^"]+)"\s*\)/g)) {
      if (name?.startsWith('GOOGLE_CLOUD_')) continue; // the workflow's own project and region
      assert.ok(name && name in env, `the workflow reads ${name}, which Terraform does not set`);
    }
  });

  it("passes the local interpreter's static check and gets the environment the local runtime gives it", () => {
    const log = createLogger({ level: 'ERROR' });
    const loaded = loadDefinitions();
    const deps = {
      definitions: loaded,
      bucket: new LocalBucket({ root: tmpdir(), log }),
      queueUrl: 'http://127.0.0.1:9',
      cwd: root,
      log,
    };
    assert.doesNotThrow(() => reconstructInterpreter(deps, readFileSync(yamlPath, 'utf8')));
    const local = Object.keys(workflowEnv(deps)).filter((name) => !name.startsWith('GOOGLE_CLOUD_'));
    assert.deepEqual(Object.keys(userEnv()).sort(), local.sort());
    // STAGE_TIMEOUTS by Terraform's rule (asserted above) equals the local runtime's.
    const byTerraformRule = Object.fromEntries(
      Object.entries(definitions.stages).map(([name, stage]) => [
        name,
        (stage.timeout_seconds + (stage.gpu > 0 ? START_HEADROOM_SECONDS.gpu : START_HEADROOM_SECONDS.cpu)) *
          (stage.max_retries + 1),
      ]),
    );
    assert.deepEqual(connectorTimeouts(loaded), byTerraformRule);
  });

  it("leases a running request for the workflow's worst case, so a slow healthy one never runs twice", () => {
    const env = tf.locals.function_env as Record<string, string>;
    assert.equal(env.DISPATCH_LEASE_SECONDS, '${tostring(sum(values(local.stage_timeouts)))}');
    const worst = workflowWorstCaseSeconds(loadDefinitions());
    const byTerraformRule = Object.values(definitions.stages).reduce(
      (sum, stage) =>
        sum + (stage.timeout_seconds + START_HEADROOM_SECONDS[stage.gpu > 0 ? 'gpu' : 'cpu']) * (stage.max_retries + 1),
      0,
    );
    assert.equal(worst, byTerraformRule);
    // The functions accept it, and even a deployment that leaves it unset gets a lease this long.
    assert.equal(loadServiceConfig({ DISPATCH_LEASE_SECONDS: String(worst) }).DISPATCH_LEASE_SECONDS, worst);
    assert.ok(loadServiceConfig({}).DISPATCH_LEASE_SECONDS >= worst, 'the default covers the worst case');
  });

  it('deploys the functions with NODE_ENV=production', () => {
    assert.equal((tf.locals.function_env as Record<string, string>).NODE_ENV, 'production');
  });
});

describe('iam', () => {
  const iamBlocks = () => tf.blocks.filter((b) => b.type.includes('_iam_'));

  it('grants no primitive role anywhere', () => {
    for (const block of tf.blocks) {
      for (const [path, value] of strings(block.body)) {
        assert.ok(
          !/roles\/(owner|editor|viewer)\b/.test(value),
          `${block.type}.${block.name} ${path}: primitive role ${value}`,
        );
      }
    }
  });

  it('makes nothing public unless a variable, off by default, says so', () => {
    for (const block of tf.blocks) {
      for (const [, value] of strings(block.body)) {
        if (!/allUsers|allAuthenticatedUsers/.test(value)) continue;
        const gate = /^\$\{var\.(\w+) \? 1 : 0\}$/.exec(String(block.body.count));
        assert.ok(gate, `${block.type}.${block.name} is public without a variable`);
        assert.equal(tf.variables.get(gate[1] ?? '')?.default, false, `${gate[1]} must default to false`);
      }
    }
  });

  it('uses every service account it creates as the identity of something', () => {
    const accounts = tf.blocks.filter((b) => b.type === 'google_service_account');
    assert.ok(accounts.length >= 6);
    for (const account of accounts) {
      const reference = `google_service_account.${account.name}`;
      const used = tf.blocks.some(
        (block) =>
          !block.type.includes('_iam_') &&
          [...strings(block.body)].some(
            ([path, value]) => /service_account/.test(path.split('.').pop() ?? '') && value.includes(reference),
          ),
      );
      assert.ok(used, `${reference} is never used as an identity`);
    }
  });

  it('lets only the workflow run jobs with overrides, and only the dispatcher start workflows', () => {
    const holders = (role: string) =>
      iamBlocks()
        .filter((b) => b.body.role === role || String(b.body.for_each).includes(role))
        .map((b) => `${b.type}.${b.name}:${String(b.body.member)}`);
    assert.deepEqual(holders('roles/run.jobsExecutorWithOverrides'), [
      'google_cloud_run_v2_job_iam_member.workflow_runs_stages:${google_service_account.workflow.member}',
    ]);
    const projectRoles = tf.locals.function_project_roles as Record<string, { function: string; role: string }>;
    const invokers = Object.values(projectRoles).filter((grant) => grant.role === 'roles/workflows.invoker');
    assert.deepEqual(invokers, [{ function: 'dispatch', role: 'roles/workflows.invoker' }]);
    assert.deepEqual(holders('roles/workflows.invoker'), []);
  });

  it('grants bucket access per bucket, never storage roles on the whole project', () => {
    for (const block of iamBlocks().filter((b) => b.type === 'google_project_iam_member')) {
      for (const [, value] of strings(block.body)) {
        assert.ok(!value.startsWith('roles/storage.'), `${block.name}: project-wide ${value}`);
      }
    }
  });
});

describe('buckets', () => {
  it('are private with uniform access, and scratch data expires', () => {
    const bucket = resource(tf, 'google_storage_bucket', 'this');
    assert.equal(bucket.uniform_bucket_level_access, true);
    assert.equal(bucket.public_access_prevention, 'enforced');
    const buckets = tf.locals.buckets as Record<string, { retention_days: string }>;
    assert.deepEqual(Object.keys(buckets).sort(), ['assets', 'sources', 'uploads', 'work']);
    assert.equal(buckets.work?.retention_days, '${var.request_retention_days}');
    assert.equal(buckets.uploads?.retention_days, '${var.upload_retention_days}');
    const rule = dynamicBlock(bucket, 'lifecycle_rule');
    assert.equal(child(rule.content, 'action').type, 'Delete');
  });
});

describe('variables and outputs', () => {
  it('uses every variable and documents it in its description and in terraform/README.md', () => {
    const readme = readFileSync(join(tfDir, 'README.md'), 'utf8');
    // Outside variables.tf: a variable's own validation mentions it without using it.
    const allText = [...tf.files].flatMap(([file, text]) => (file === 'variables.tf' ? [] : [text])).join('\n');
    for (const [name, variable] of tf.variables) {
      assert.ok(new RegExp(`var\\.${name}\\b`).test(allText), `variable ${name} is never used`);
      const description = typeof variable.description === 'string' ? variable.description : '';
      assert.ok(description.length > 10, `variable ${name} has no description`);
      assert.ok(readme.includes(`\`${name}\``), `variable ${name} is not in terraform/README.md`);
    }
  });

  it('leaves no local or data source unused', () => {
    const allText = [...tf.files.values()].join('\n');
    for (const name of Object.keys(tf.locals)) {
      assert.ok(new RegExp(`local\\.${name}\\b`).test(allText), `local ${name} is never used`);
    }
    for (const block of tf.blocks.filter((b) => b.kind === 'data')) {
      assert.ok(allText.includes(`data.${block.type}.${block.name}`), `data.${block.type}.${block.name} is never used`);
    }
  });

  it('outputs the trigger and status URLs, the upload bucket and how to upload a first video', () => {
    for (const name of ['trigger_url', 'status_url', 'upload_bucket', 'first_upload']) {
      assert.ok(tf.outputs.get(name)?.description, `output ${name}`);
    }
    assert.match(String(tf.outputs.get('first_upload')?.value), /gcloud storage cp .* gs:\/\//);
  });
});
