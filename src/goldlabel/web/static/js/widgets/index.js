// One widget per question kind. A widget is a plain object:
//   el            its DOM
//   getValue()    the answer for its question (the server's format), or null when unanswered
//   setValue(v)   show an earlier answer or a prediction (invalid parts are ignored)
//   isComplete()  whether the question is answered
//   keydown(e)    handle a shortcut while the question is active; true when handled
//   focus()       called when the question becomes active
//   hints         [[keys, what they do], ...] for the shortcut list
//   consumes      item data fields the widget shows itself (not repeated in the item panel)
// env.changed({advance}) tells the workspace that the answer changed.

import { createBoxes } from './boxes.js';
import { createChoice, createMultiChoice } from './choice.js';
import { createKeypoints } from './keypoints.js';
import { createPolygons } from './polygons.js';
import { createRanking } from './ranking.js';
import { createRating } from './rating.js';
import { createSpans } from './spans.js';
import { createText } from './text.js';

const FACTORIES = {
  choice: createChoice,
  multi_choice: createMultiChoice,
  rating: createRating,
  text: createText,
  spans: createSpans,
  boxes: createBoxes,
  ranking: createRanking,
  polygons: createPolygons,
  keypoints: createKeypoints,
};

export function createWidget(question, item, env) {
  const factory = FACTORIES[question.kind];
  if (!factory) throw new Error(`unknown question kind ${question.kind}`);
  return factory(question, item, env);
}

// Label colors cycle through eight classes defined in the stylesheet.
export function colorClass(index) {
  return `c${index % 8}`;
}
