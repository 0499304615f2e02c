import { isNodeName, isPlatformText, isRecord, parseImageReference, parsePlatform, MAX_PREHEAT_PLATFORMS, type ImageReference, type Platform } from '@shoal/core';
import { InvalidImagePullJobError } from '../errors.js';

/** Nodes one ImagePullJob may name or select. Nodes. */
export const MAX_NODES_PER_JOB = 1000;
/** Pull secrets one job may name. */
export const MAX_PULL_SECRETS = 16;
/** matchLabels entries and matchExpressions one selector may hold. */
export const MAX_SELECTOR_TERMS = 32;
/** Seconds: OpenKruise's default pull timeout. */
export const DEFAULT_TIMEOUT_SECONDS = 600;
export const DEFAULT_BACKOFF_LIMIT = 3;
export const DEFAULT_PARALLELISM = 1;
/** Largest parallelism honoured; the controller also caps node fills globally. */
export const MAX_PARALLELISM = 1000;
/** Images one ImageListPullJob may name. */
export const MAX_IMAGES_PER_LIST_JOB = 32;

/** The two kinds the controller runs: one image, or several (OpenKruise's ImageListPullJob). */
export type JobKind = 'ImagePullJob' | 'ImageListPullJob';

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values: string[];
}

export type NodeSelector =
  | { kind: 'names'; names: string[] }
  | { kind: 'labels'; matchLabels: Record<string, string>; matchExpressions: LabelSelectorRequirement[] }
  /** podSelector: the nodes running active pods that match, in the job's namespace (as OpenKruise). */
  | { kind: 'pods'; matchLabels: Record<string, string>; matchExpressions: LabelSelectorRequirement[] };

/** One image of a job. */
export interface JobImage {
  text: string;
  ref: ImageReference;
}

/** An ImagePullJob's spec after validation: defaults filled in, the image parsed. */
export interface ImagePullJobSpec {
  /** The first (for ImagePullJob the only) image. */
  imageText: string;
  image: ImageReference;
  /** Every image, in spec order (ImageListPullJob: spec.images; ImagePullJob: spec.image). */
  images: JobImage[];
  platforms: Platform[] | undefined;
  selector: NodeSelector;
  parallelism: number;
  timeoutSeconds: number;
  /** An attempt whose node stores no new byte for this long fails (and is retried). Defaults to timeoutSeconds. */
  stallSeconds: number;
  backoffLimit: number;
  pullSecrets: string[];
  completionPolicy: { type: 'Always' | 'Never'; activeDeadlineSeconds: number | undefined; ttlSecondsAfterFinished: number | undefined };
  imagePullPolicy: 'Always' | 'IfNotPresent';
}

/** A label key: optional DNS-subdomain prefix, then a name of at most 63 characters. */
const LABEL_KEY_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
/** A Secret's name (RFC 1123 subdomain). */
const SECRET_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Checks an ImagePullJob's `spec` (untrusted: anyone who may create the
 * resource wrote it) and fills in OpenKruise's defaults. Every problem is
 * reported at once, in InvalidImagePullJobError.
 */
export function parseImagePullJobSpec(raw: unknown, jobKind: JobKind = 'ImagePullJob'): ImagePullJobSpec {
  const problems: string[] = [];
  if (!isRecord(raw)) throw new InvalidImagePullJobError(['spec must be an object']);
  const imageField = jobKind === 'ImagePullJob' ? 'image' : 'images';
  const known = new Set([imageField, 'selector', 'parallelism', 'pullPolicy', 'pullSecrets', 'completionPolicy', 'imagePullPolicy', 'platforms', 'podSelector']);
  for (const key of Object.keys(raw)) if (!known.has(key)) problems.push(`spec.${key.slice(0, 40)} is not a field of ${jobKind}`);

  const images: JobImage[] = [];
  const parseOne = (text: unknown, where: string): void => {
    if (typeof text !== 'string' || text === '') problems.push(`${where} is required (an image reference such as registry.example/app:v1)`);
    else if (text.length > 512) problems.push(`${where} is longer than 512 characters`);
    else {
      try {
        images.push({ text, ref: parseImageReference(text) });
      } catch (err) {
        problems.push(`${where} ${show(text)} is not an image reference: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  if (jobKind === 'ImagePullJob') parseOne(raw.image, 'spec.image');
  else if (!Array.isArray(raw.images) || raw.images.length === 0 || raw.images.length > MAX_IMAGES_PER_LIST_JOB) problems.push(`spec.images must be a list of 1 to ${MAX_IMAGES_PER_LIST_JOB} image references`);
  else {
    raw.images.forEach((text: unknown, i) => parseOne(text, `spec.images[${i}]`));
    if (new Set(images.map((i) => i.text)).size !== images.length) problems.push('spec.images names an image twice');
  }
  const image = images[0]?.ref;
  const imageText = images[0]?.text;

  let platforms: Platform[] | undefined;
  if (raw.platforms !== undefined) {
    if (!Array.isArray(raw.platforms) || raw.platforms.length === 0 || raw.platforms.length > MAX_PREHEAT_PLATFORMS) {
      problems.push(`spec.platforms must be a list of 1 to ${MAX_PREHEAT_PLATFORMS} platforms such as linux/amd64`);
    } else {
      const bad = raw.platforms.filter((p) => typeof p !== 'string' || !isPlatformText(p));
      if (bad.length > 0) problems.push(`spec.platforms: ${bad.slice(0, 3).map(show).join(', ')} ${bad.length === 1 ? 'is not a platform' : 'are not platforms'} (os/arch[/variant], lowercase)`);
      else platforms = (raw.platforms as string[]).map(parsePlatform);
    }
  }

  let selector: NodeSelector | undefined;
  if (raw.podSelector !== undefined) {
    if (raw.selector !== undefined) {
      problems.push('give spec.selector or spec.podSelector, not both');
      parseSelector(raw.selector, problems); // its own problems too, all at once
    }
    selector = parseLabelSelector(raw.podSelector, 'spec.podSelector', 'pods', problems);
  } else selector = parseSelector(raw.selector, problems);

  const parallelism = integer(raw.parallelism, 'spec.parallelism', DEFAULT_PARALLELISM, 0, MAX_PARALLELISM, problems);
  let timeoutSeconds = DEFAULT_TIMEOUT_SECONDS;
  let backoffLimit = DEFAULT_BACKOFF_LIMIT;
  let stallSeconds: number | undefined;
  if (raw.pullPolicy !== undefined) {
    if (!isRecord(raw.pullPolicy)) problems.push('spec.pullPolicy must be an object');
    else {
      for (const key of Object.keys(raw.pullPolicy)) if (key !== 'timeoutSeconds' && key !== 'backoffLimit' && key !== 'stallSeconds') problems.push(`spec.pullPolicy.${key.slice(0, 40)} is not a field of pullPolicy`);
      timeoutSeconds = integer(raw.pullPolicy.timeoutSeconds, 'spec.pullPolicy.timeoutSeconds', DEFAULT_TIMEOUT_SECONDS, 1, 86_400, problems);
      backoffLimit = integer(raw.pullPolicy.backoffLimit, 'spec.pullPolicy.backoffLimit', DEFAULT_BACKOFF_LIMIT, 0, 100, problems);
      if (raw.pullPolicy.stallSeconds !== undefined) stallSeconds = integer(raw.pullPolicy.stallSeconds, 'spec.pullPolicy.stallSeconds', DEFAULT_TIMEOUT_SECONDS, 1, 86_400, problems);
    }
  }

  const pullSecrets: string[] = [];
  if (raw.pullSecrets !== undefined) {
    if (!Array.isArray(raw.pullSecrets) || raw.pullSecrets.length > MAX_PULL_SECRETS) problems.push(`spec.pullSecrets must be a list of at most ${MAX_PULL_SECRETS} Secret names`);
    else {
      for (const s of raw.pullSecrets) {
        if (typeof s === 'string' && s.length <= 253 && SECRET_NAME_RE.test(s)) pullSecrets.push(s);
        else problems.push(`spec.pullSecrets: ${show(s)} is not a Secret name`);
      }
    }
  }

  let completionPolicy: ImagePullJobSpec['completionPolicy'] = { type: 'Always', activeDeadlineSeconds: undefined, ttlSecondsAfterFinished: undefined };
  if (raw.completionPolicy !== undefined) {
    const cp = raw.completionPolicy;
    if (!isRecord(cp)) problems.push('spec.completionPolicy must be an object');
    else {
      const type = cp.type ?? 'Always';
      if (type !== 'Always' && type !== 'Never') problems.push(`spec.completionPolicy.type must be Always or Never, not ${show(type)}`);
      const deadline = cp.activeDeadlineSeconds === undefined ? undefined : integer(cp.activeDeadlineSeconds, 'spec.completionPolicy.activeDeadlineSeconds', 0, 1, 30 * 86_400, problems);
      const ttl = cp.ttlSecondsAfterFinished === undefined ? undefined : integer(cp.ttlSecondsAfterFinished, 'spec.completionPolicy.ttlSecondsAfterFinished', 0, 0, 365 * 86_400, problems);
      if (type === 'Never' && (deadline !== undefined || ttl !== undefined)) problems.push('spec.completionPolicy: activeDeadlineSeconds and ttlSecondsAfterFinished apply only to type Always');
      completionPolicy = { type: type === 'Never' ? 'Never' : 'Always', activeDeadlineSeconds: deadline, ttlSecondsAfterFinished: ttl };
    }
  }

  const pull = raw.imagePullPolicy ?? 'Always';
  if (pull !== 'Always' && pull !== 'IfNotPresent') problems.push(`spec.imagePullPolicy must be Always or IfNotPresent, not ${show(pull)}`);

  if (problems.length > 0 || image === undefined || imageText === undefined || selector === undefined) throw new InvalidImagePullJobError(problems.length > 0 ? problems : ['spec is incomplete']);
  return {
    imageText,
    image,
    images,
    stallSeconds: stallSeconds ?? timeoutSeconds,
    platforms,
    selector,
    parallelism,
    timeoutSeconds,
    backoffLimit,
    pullSecrets,
    completionPolicy,
    imagePullPolicy: pull === 'IfNotPresent' ? 'IfNotPresent' : 'Always',
  };
}

function integer(value: unknown, where: string, fallback: number, min: number, max: number, problems: string[]): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    problems.push(`${where} must be an integer from ${min} to ${max}, not ${show(value)}`);
    return fallback;
  }
  return value;
}

function parseSelector(raw: unknown, problems: string[]): NodeSelector | undefined {
  if (raw === undefined) {
    problems.push('spec.selector is required: names (a list of node names) or matchLabels/matchExpressions');
    return undefined;
  }
  if (!isRecord(raw)) {
    problems.push('spec.selector must be an object');
    return undefined;
  }
  const hasNames = raw.names !== undefined;
  const hasLabels = raw.matchLabels !== undefined || raw.matchExpressions !== undefined;
  if (hasNames && hasLabels) {
    problems.push('spec.selector: give names or matchLabels/matchExpressions, not both');
    return undefined;
  }
  if (hasNames) {
    const names = raw.names;
    if (!Array.isArray(names) || names.length === 0 || names.length > MAX_NODES_PER_JOB) {
      problems.push(`spec.selector.names must be a list of 1 to ${MAX_NODES_PER_JOB} node names`);
      return undefined;
    }
    const bad = names.filter((n) => typeof n !== 'string' || n.length > 253 || !isNodeName(n));
    if (bad.length > 0) {
      problems.push(`spec.selector.names: ${bad.slice(0, 3).map(show).join(', ')} ${bad.length === 1 ? 'is not a node name' : 'are not node names'}`);
      return undefined;
    }
    return { kind: 'names', names: [...new Set(names as string[])] };
  }
  if (!hasLabels) {
    problems.push('spec.selector must hold names or matchLabels/matchExpressions (an empty selector would select every node: say so with matchExpressions if you mean it)');
    return undefined;
  }
  return parseLabelSelector(raw, 'spec.selector', 'labels', problems);
}

/** matchLabels/matchExpressions (a Kubernetes LabelSelector) at `where`. */
function parseLabelSelector(raw: unknown, where0: string, kind: 'labels' | 'pods', problems: string[]): NodeSelector | undefined {
  if (!isRecord(raw)) {
    problems.push(`${where0} must be an object`);
    return undefined;
  }
  for (const key of Object.keys(raw)) if (key !== 'matchLabels' && key !== 'matchExpressions' && !(kind === 'labels' && key === 'names')) problems.push(`${where0}.${key.slice(0, 40)} is not a field of a label selector`);
  if (raw.matchLabels === undefined && raw.matchExpressions === undefined) {
    problems.push(`${where0} must hold matchLabels or matchExpressions`);
    return undefined;
  }
  const before = problems.length;
  const matchLabels: Record<string, string> = {};
  if (raw.matchLabels !== undefined) {
    if (!isRecord(raw.matchLabels) || Object.keys(raw.matchLabels).length > MAX_SELECTOR_TERMS) problems.push(`${where0}.matchLabels must be a map of at most ${MAX_SELECTOR_TERMS} labels`);
    else {
      for (const [key, value] of Object.entries(raw.matchLabels)) {
        if (!LABEL_KEY_RE.test(key) || key.length > 317) problems.push(`${where0}.matchLabels: ${show(key)} is not a label key`);
        else if (typeof value !== 'string' || !LABEL_VALUE_RE.test(value)) problems.push(`${where0}.matchLabels.${key}: ${show(value)} is not a label value`);
        else matchLabels[key] = value;
      }
    }
  }
  const matchExpressions: LabelSelectorRequirement[] = [];
  if (raw.matchExpressions !== undefined) {
    if (!Array.isArray(raw.matchExpressions) || raw.matchExpressions.length > MAX_SELECTOR_TERMS) problems.push(`${where0}.matchExpressions must be a list of at most ${MAX_SELECTOR_TERMS} requirements`);
    else {
      raw.matchExpressions.forEach((e: unknown, i) => {
        const where = `${where0}.matchExpressions[${i}]`;
        if (!isRecord(e)) return void problems.push(`${where} must be an object`);
        const { key, operator, values } = e;
        if (typeof key !== 'string' || !LABEL_KEY_RE.test(key)) return void problems.push(`${where}.key: ${show(key)} is not a label key`);
        if (operator !== 'In' && operator !== 'NotIn' && operator !== 'Exists' && operator !== 'DoesNotExist') return void problems.push(`${where}.operator must be In, NotIn, Exists or DoesNotExist, not ${show(operator)}`);
        const list = values ?? [];
        if (!Array.isArray(list) || list.length > MAX_NODES_PER_JOB || list.some((v) => typeof v !== 'string' || !LABEL_VALUE_RE.test(v))) return void problems.push(`${where}.values must be a list of label values`);
        if ((operator === 'In' || operator === 'NotIn') && list.length === 0) return void problems.push(`${where}.values must not be empty for ${operator}`);
        if ((operator === 'Exists' || operator === 'DoesNotExist') && list.length > 0) return void problems.push(`${where}.values must be empty for ${operator}`);
        matchExpressions.push({ key, operator, values: list as string[] });
      });
    }
  }
  if (problems.length > before) return undefined;
  return { kind, matchLabels, matchExpressions };
}
