import React from 'react';

export function Greeting({ name }: { name: string }): JSX.Element {
  const text = 'Hello';
  return <div className="greeting">{text}, {name}</div>;
}
