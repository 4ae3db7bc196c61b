/// <reference lib="dom" />
/**
 * The web UI's entry point in the browser: picks the page for the address and
 * renders it from the /api endpoints. Pages are plain links between addresses,
 * so every page can be bookmarked, shared and opened in a new tab.
 */
import { ApiError } from './api.js';
import { casPage } from './casPages.js';
import { h, show } from './dom.js';
import { storagePage, workersPage } from './farmPages.js';
import { invocationPage, invocationsPage } from './invocationPages.js';
import { actionPage, operationsPage, overviewPage } from './operationPages.js';

function render(path: string): Promise<void> {
  if (path === '/' || path === '') return overviewPage();
  if (path === '/operations') return operationsPage();
  if (path.startsWith('/actions/')) return actionPage(path.slice('/actions/'.length));
  if (path === '/workers') return workersPage();
  if (path === '/storage') return storagePage();
  if (path === '/invocations') return invocationsPage();
  if (path.startsWith('/invocations/')) return invocationPage(decodeURIComponent(path.slice('/invocations/'.length)));
  if (path === '/cas' || path.startsWith('/cas/')) return casPage(path.slice('/cas/'.length));
  show(h('h1', {}, 'Not found'), h('p', {}, 'There is no such page.'));
  return Promise.resolve();
}

async function start(): Promise<void> {
  for (const anchor of document.querySelectorAll('header nav a')) {
    const href = anchor.getAttribute('href') ?? '';
    if (href !== '/' && location.pathname.startsWith(href.replace(/\/$/, '')))
      anchor.setAttribute('aria-current', 'page');
  }
  try {
    await render(location.pathname);
    document.body.dataset.loaded = 'true';
  } catch (error) {
    const message = error instanceof ApiError ? error.message : `This page failed: ${String(error)}`;
    show(h('h1', {}, 'Cannot show this page'), h('p', { class: 'error' }, message));
    document.body.dataset.loaded = 'error';
  }
}

void start();
